"""The label-issue study's pictures: the suspects to judge by eye, and how good each ranking is.

Pure matplotlib over the study's table (``LabelIssueResult.table()``: one row per pool example,
most suspect first by memlab's ranking), its images and, where the truth is known, which
labels are wrong. Drawn beside the run (``pipeline.tracking.painter``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from pipeline.report.canvas import new_figure, suptitle
from pipeline.report.example_figures import image_gallery


def suspect_gallery(
    table: dict[str, np.ndarray],
    inputs: np.ndarray,
    image_shape,
    by: str,
    score: str,
    k: int,
    *,
    title: str,
) -> Figure:
    """The ``k`` most suspect images by the rank column ``by``, each captioned with its pool
    index, given label, the label the held-out models predict, and ``score``'s value; red where
    the truth is known and the label is wrong. ``inputs`` are in the table's row order."""
    picks = np.argsort(np.asarray(table[by]), kind="stable")[:k]
    values = np.asarray(table[score], dtype=float)
    captions = [
        f"#{int(table['index'][i])}: {int(table['label'][i])}->{int(table['predicted'][i])}"
        f"\n{score[:5]} {values[i]:.3g}"
        for i in picks
    ]
    wrong = np.asarray(table["mislabeled"], dtype=bool)[picks]
    return image_gallery(
        np.asarray(inputs)[picks], image_shape, captions, highlight=wrong, title=title, n_cols=10
    )


def precision_recall(
    orders: dict[str, np.ndarray], mislabeled: np.ndarray, *, title: str = ""
) -> Figure:
    """Precision and recall of each ranking among its top k, against k (two panels).

    ``orders``: each ranking's (n,) positions, most suspect first; ``mislabeled`` (n,) bool.
    The dotted line marks k = the number of mislabeled examples (where precision at k is read).
    """
    wrong = np.asarray(mislabeled, dtype=bool)
    n, total = len(wrong), int(wrong.sum())
    k = np.arange(1, n + 1)
    fig = new_figure((11, 4.2))
    ax_p, ax_r = fig.subplots(1, 2)
    for name, order in orders.items():
        found = np.cumsum(wrong[np.asarray(order)])
        style = {"color": "black", "linewidth": 2.2} if name == "cleanlab" else {"linewidth": 1.2}
        ax_p.plot(k, found / k, label=name, **style)
        ax_r.plot(k, found / max(total, 1), label=name, **style)
    for ax, what in ((ax_p, "precision"), (ax_r, "recall")):
        ax.axvline(total, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("k: the most suspect examples flagged")
        ax.set_ylabel(f"{what} in the top k")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    ax_r.legend(fontsize=7, loc="upper left")
    suptitle(fig, title or f"finding {total} wrong labels among {n} (dotted: k = {total})")
    return fig


def top_overlap(orders: dict[str, np.ndarray], reference: str = "cleanlab", k_max: int = 1000):
    """How many of each ranking's top k are in ``reference``'s top k, as a share of k, against
    k: agreement with confident learning where the truth is unknown (the real data)."""
    k_max = min(k_max, len(orders[reference]))
    ks = np.unique(np.round(np.geomspace(10, k_max, 25)).astype(int)) if k_max >= 10 else [k_max]
    fig = new_figure((6.5, 4.2))
    ax = fig.add_subplot()
    for name, order in orders.items():
        if name == reference:
            continue
        shares = [len(set(order[:k]) & set(orders[reference][:k])) / k for k in ks]
        ax.plot(ks, shares, marker=".", label=name)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k")
    ax.set_ylabel(f"share of the top k also in {reference}'s top k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"agreement with {reference}")
    return fig


def label_issue_figures(
    table: dict[str, np.ndarray],
    inputs: np.ndarray,
    image_shape,
    orders: dict[str, np.ndarray],
    mislabeled: np.ndarray,
    *,
    rank_by: str,
    top: int,
) -> dict[str, Figure]:
    """Every picture of the study by file name: memlab's and cleanlab's top ``top`` suspects,
    the agreement of each ranking with cleanlab's, and, where some labels are known to be
    wrong, each ranking's precision and recall against k. ``orders`` are positions into the
    pool (``mislabeled``'s order); ``table`` and ``inputs`` are in memlab's order."""
    caption = "#pool index: given label -> predicted by the models that did not train on it"
    drawn = {
        "gallery_memlab.png": suspect_gallery(
            table,
            inputs,
            image_shape,
            "rank",
            rank_by,
            top,
            title=f"memlab's top {top} suspects by {rank_by} ({caption}; red: known wrong)",
        ),
        "gallery_cleanlab.png": suspect_gallery(
            table,
            inputs,
            image_shape,
            "cleanlab_rank",
            "p_label",
            top,
            title=f"cleanlab's top {top} suspects ({caption}; p_label: its self-confidence)",
        ),
        "agreement.png": top_overlap(orders),
    }
    wrong = np.asarray(mislabeled, dtype=bool)
    if wrong.any() and not wrong.all():
        drawn["precision_recall.png"] = precision_recall(orders, wrong)
    return drawn
