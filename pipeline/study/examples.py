"""Which examples are learned, forgotten or memorized: per-example scores from one run's record.

Every score here is a pure function of the per-example record a training run keeps
(:class:`ExampleRecord`): for each epoch t and training example i, whether i was classified
correctly when its mini-batch was scored, just before that batch's update (``correct[t, i]``),
and the probability the network gave the label i is trained on (``label_proba[t, i]``). That is
the common design of every public implementation (Toneva et al.'s forgetting events, Swayamdipta
et al.'s dataset cartography): record the matrix, compute the scores afterwards.

Conventions (Toneva et al. 2019, ``mtoneva/example_forgetting``): a **forgetting event** is
``correct`` going 1 -> 0 between consecutive presentations; an example **never learned**
(never classified correctly) counts as forgotten as often as it was presented (``T`` epochs);
**unforgettable** = learned at some point and never forgotten. That ``T`` is a placeholder
that ranks never-learned examples first; it grows with the number of epochs, so it never
enters a mean: the summary gives the mean number of events over the examples that were
learned, and the share never learned on its own. Cartography (Swayamdipta et al.
2020, ``allenai/cartography``): **confidence** is the mean over epochs of the label's
probability, **variability** its standard deviation (population, ``ddof=0``), **correctness**
the fraction of epochs classified correctly.

Epochs are numbered from 1; a score that says "when" is ``T + 1`` for "not within the record".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ARRAYS = ("correct", "label_proba", "index", "label", "true_label", "corrupted")


@dataclass(frozen=True)
class ExampleRecord:
    """How every training example fared, epoch by epoch, and which example it is.

    Attributes
    ----------
    correct : ndarray of bool, shape (n_epochs, n_examples)
        Classified correctly (against the trained-on label) in the epoch's running pass.
    label_proba : ndarray of float32, shape (n_epochs, n_examples)
        Probability given to the trained-on label in that same pass.
    index : ndarray of int64, shape (n_examples,)
        Each example's row in the dataset's pool (``Dataset.X``), -1 where unknown.
    label : ndarray of int64, shape (n_examples,)
        The label trained on.
    true_label : ndarray of int64, shape (n_examples,)
        The dataset's label.
    corrupted : ndarray of bool, shape (n_examples,)
        Chosen for label corruption (a chosen label may still be the true one; see
        ``mislabeled``).
    inputs : ndarray of shape (n_examples, n_features), optional
        The inputs as trained on, for drawing galleries; not part of ``arrays()`` (``index``
        finds them in the dataset again).
    """

    correct: np.ndarray
    label_proba: np.ndarray
    index: np.ndarray
    label: np.ndarray
    true_label: np.ndarray
    corrupted: np.ndarray
    inputs: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def mislabeled(self) -> np.ndarray:
        """(n_examples,) bool: trained on a label that is not the true one."""
        return self.label != self.true_label

    def arrays(self) -> dict[str, np.ndarray]:
        """The record as named plain arrays (what the ``examples.npz`` artifact holds)."""
        return {name: getattr(self, name) for name in ARRAYS}

    @classmethod
    def from_arrays(cls, arrays) -> ExampleRecord:
        """The record back from ``arrays()`` (e.g. ``np.load(path, allow_pickle=False)``)."""
        return cls(**{name: np.asarray(arrays[name]) for name in ARRAYS})


# ------------------------------------------------------------------ learning and forgetting
def first_correct_epoch(correct: np.ndarray) -> np.ndarray:
    """(n,) int: the first epoch (1-based) each example was classified correctly; T + 1 if never.

    ``correct`` is (T, n) bool.
    """
    correct = np.asarray(correct, dtype=bool)
    ever = correct.any(axis=0)
    return np.where(ever, correct.argmax(axis=0) + 1, correct.shape[0] + 1)


def learned_epoch(correct: np.ndarray) -> np.ndarray:
    """(n,) int: the epoch from which each example stays correct to the end; T + 1 if wrong last.

    1 for an example right at every epoch. ``correct`` is (T, n) bool.
    """
    correct = np.asarray(correct, dtype=bool)
    n_epochs = correct.shape[0]
    wrong_from_end = (~correct)[::-1].argmax(axis=0)  # epochs since the last wrong one (0 = last)
    last_wrong = n_epochs - 1 - wrong_from_end  # 0-based; meaningless where never wrong
    return np.where(correct.all(axis=0), 1, last_wrong + 2)


def never_learned(correct: np.ndarray) -> np.ndarray:
    """(n,) bool: never classified correctly in any epoch."""
    return ~np.asarray(correct, dtype=bool).any(axis=0)


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """(n,) int: how often each example went from correct to wrong between consecutive epochs.

    Toneva et al.'s convention: an example never learned counts T events (one per
    presentation), so it ranks as more forgettable than any example that was ever learned.
    """
    correct = np.asarray(correct, dtype=bool)
    events = np.count_nonzero(correct[:-1] & ~correct[1:], axis=0)
    return np.where(never_learned(correct), correct.shape[0], events)


def unforgettable(correct: np.ndarray) -> np.ndarray:
    """(n,) bool: learned at some epoch and never forgotten afterwards."""
    correct = np.asarray(correct, dtype=bool)
    return ~never_learned(correct) & (forgetting_events(correct) == 0)


# ------------------------------------------------------------------ dataset cartography
def confidence(label_proba: np.ndarray) -> np.ndarray:
    """(n,): mean over epochs of the probability of the trained-on label."""
    return np.asarray(label_proba, dtype=np.float64).mean(axis=0)


def variability(label_proba: np.ndarray) -> np.ndarray:
    """(n,): standard deviation over epochs of that probability (ddof=0, as cartography)."""
    return np.asarray(label_proba, dtype=np.float64).std(axis=0)


def correctness(correct: np.ndarray) -> np.ndarray:
    """(n,): fraction of epochs in which the example was classified correctly."""
    return np.asarray(correct, dtype=bool).mean(axis=0)


def scores(record: ExampleRecord) -> dict[str, np.ndarray]:
    """Every per-example score of ``record``, each (n,)."""
    c, p = record.correct, record.label_proba
    return {
        "first_correct_epoch": first_correct_epoch(c),
        "learned_epoch": learned_epoch(c),
        "forgetting_events": forgetting_events(c),
        "confidence": confidence(p),
        "variability": variability(p),
        "correctness": correctness(c),
    }


# Each score's expected direction for "looks mislabeled": +1 if a mislabeled example should
# score high. An AUROC is always measured in this direction, so one well below 0.5 means the
# score separates the other way round than expected (``inverted``), not that it is useless.
SUSPICION = {
    "first_correct_epoch": 1,
    "learned_epoch": 1,
    "forgetting_events": 1,
    "confidence": -1,
    "variability": 1,
    "correctness": -1,
}


def auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for telling ``positive`` (bool (n,)) from the rest.

    The probability that a random positive scores higher than a random negative, ties counting
    one half (the Mann-Whitney statistic); NaN unless both classes are present.
    """
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(score, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc_se(area: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUROC (Hanley & McNeil 1982, Radiology 143, their equation 2).

    sqrt((A (1 - A) + (n_pos - 1) (Q1 - A^2) + (n_neg - 1) (Q2 - A^2)) / (n_pos n_neg)), with
    Q1 = A / (2 - A) and Q2 = 2 A^2 / (1 + A).
    """
    q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
    var = area * (1 - area) + (n_pos - 1) * (q1 - area**2) + (n_neg - 1) * (q2 - area**2)
    return float(np.sqrt(max(var, 0.0) / (n_pos * n_neg)))


def inverted(area: float, n_pos: int, n_neg: int, z: float = 1.959963984540054) -> bool:
    """Whether an AUROC is below 0.5 beyond its 95% interval: the score separates, but the
    other way round than its expected direction (e.g. an under-trained run's variability)."""
    return bool(area + z * auroc_se(area, n_pos, n_neg) < 0.5)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]  # each tie group is [start, end)
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def summary(record: ExampleRecord) -> dict[str, float]:
    """Per-run numbers: the shares never forgotten (unforgettable) and never learned, the mean
    number of forgetting events of the examples that were learned, and, when some labels are
    wrong, each score's AUROC at telling mislabeled from clean examples.

    AUROCs are measured in each score's expected direction (``SUSPICION``; 0.5 = no better
    than chance, 1 = perfect); the positives are the examples trained on a wrong label
    (``record.mislabeled``). ``examples_scores_inverted`` counts the scores whose AUROC is
    below 0.5 beyond its 95% interval (:func:`inverted`; :func:`auroc_lines` names them).
    ``examples_mean_forgetting_events_learned`` is absent when no example was learned.
    """
    c = record.correct
    never = never_learned(c)
    out = {
        "examples_share_never_forgotten": float(unforgettable(c).mean()),
        "examples_share_never_learned": float(never.mean()),
    }
    if (~never).any():
        events = forgetting_events(c)[~never]
        out["examples_mean_forgetting_events_learned"] = float(events.mean())
    wrong = record.mislabeled
    if wrong.any() and not wrong.all():
        n_pos, n_neg = int(wrong.sum()), int((~wrong).sum())
        flipped = 0
        for name, values in scores(record).items():
            area = auroc(wrong, SUSPICION[name] * values)
            out[f"examples_auroc_corrupt_{name}"] = area
            flipped += inverted(area, n_pos, n_neg)
        out["examples_scores_inverted"] = float(flipped)
    return out


def auroc_lines(metrics: dict[str, float], n_pos: int, n_neg: int) -> list[str]:
    """The AUROCs of ``summary(record)`` as lines for people, best first, an inverted score
    flagged as such (and listed apart) rather than ranked last as the worst.

    ``n_pos`` and ``n_neg`` are the mislabeled and clean examples behind them (for the
    interval that decides an inversion). Empty when ``metrics`` has no AUROC.
    """
    prefix = "examples_auroc_corrupt_"
    found = {k.removeprefix(prefix): v for k, v in metrics.items() if k.startswith(prefix)}
    ranked = sorted(found.items(), key=lambda item: -item[1])
    lines = [
        f"{name}: AUROC {area:.3f} (expected direction: mislabeled score "
        f"{'high' if SUSPICION[name] > 0 else 'low'})"
        for name, area in ranked
        if not inverted(area, n_pos, n_neg)
    ]
    for name, area in ranked:
        if inverted(area, n_pos, n_neg):
            lines.append(
                f"{name}: AUROC {area:.3f}, INVERTED: it separates mislabeled examples the "
                f"other way round ({1 - area:.3f} reversed); an under-trained run?"
            )
    return lines


def inverted_scores(metrics: dict[str, float], n_pos: int, n_neg: int) -> list[str]:
    """The names of the scores whose AUROC in ``metrics`` (``summary(record)``) is inverted
    (:func:`inverted`), in ``metrics``' order; ``n_pos`` and ``n_neg`` as for
    :func:`auroc_lines`. Empty when none is, or when ``metrics`` has no AUROC."""
    prefix = "examples_auroc_corrupt_"
    return [
        k.removeprefix(prefix)
        for k, area in metrics.items()
        if k.startswith(prefix) and inverted(area, n_pos, n_neg)
    ]


def gallery_picks(record: ExampleRecord, k: int = 24) -> dict[str, np.ndarray]:
    """Positions (into the record) of the examples worth looking at, up to ``k`` of each kind.

    ``never_learned``: never classified correctly, least confident first; ``most_forgotten``:
    learned, then forgotten most often; ``learned_last``: learned (right from some epoch to the
    end), latest first. Ties go to the less confident example.
    """
    c, conf = record.correct, confidence(record.label_proba)
    n_epochs = c.shape[0]
    never = np.flatnonzero(never_learned(c))
    events = forgetting_events(c)
    learned = np.flatnonzero(~never_learned(c))
    forgotten = learned[events[learned] > 0]
    stays = learned_epoch(c)
    late = np.flatnonzero(stays <= n_epochs)
    return {
        "never_learned": never[np.lexsort((never, conf[never]))][:k],
        "most_forgotten": forgotten[np.lexsort((conf[forgotten], -events[forgotten]))][:k],
        "learned_last": late[np.lexsort((conf[late], -stays[late]))][:k],
    }
