"""The report reads a real MLflow store: sweeps, arms, failures, sorting, files and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag

from pipeline.report.report_cli import main as report_main
from pipeline.report.table import build_table, display_table, leaf_runs, markdown, plain_markdown
from pipeline.tracking import query

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = 1_700_000_000_000  # ms; runs get increasing start times from here
BASE_PARAMS = {
    "model.name": "numpy_mlp",
    "model.hidden_layer_sizes": "[512]",
    "model.learning_rate": "0.05",
    "probe.labels.fraction": "0.0",
    "probe.inputs": "none",
    "seed": "0",
    "n_train": "1257",
}
# p -> (final train accuracy, test accuracy, epochs to fit or None = never fitted)
LABEL_SWEEP = {"0.5": (1.0, 0.55, 40), "0.0": (1.0, 0.97, 12), "1.0": (0.93, 0.09, None)}
WIDTH_SWEEP = {"[128]": (1.0, 0.1, 30), "[16]": (0.4, 0.1, None)}


@dataclass
class Store:
    uri: str
    runs: dict[str, str] = field(default_factory=dict)  # label -> run id


def main(argv: list[str]) -> int:
    """``python -m pipeline.report``, in process: the report on MLflow's runs."""
    return report_main(argv, source=query)


def _run(
    client,
    exp,
    clock,
    name,
    *,
    params=None,
    metrics=None,
    tags=None,
    parent=None,
    status="FINISHED",
):
    clock.append(clock[-1] + 1000)
    all_tags = dict(tags or {})
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    run_id = client.create_run(exp, start_time=clock[-1], tags=all_tags, run_name=name).info.run_id
    client.log_batch(
        run_id,
        params=[Param(k, v) for k, v in (params or {}).items()],
        metrics=[Metric(k, float(v), clock[-1], 0) for k, v in (metrics or {}).items()],
        tags=[RunTag("model", "numpy_mlp")],
    )
    client.set_terminated(run_id, status=status)
    return run_id


def _results(train, test, fit):
    metrics = {"final_train_accuracy": train, "test_accuracy": test, "fit_seconds": 2.5}
    metrics["test_loss"] = 1.0 - test  # a final metric the tables do not show
    metrics["epochs"] = fit or 300
    if fit is not None:
        metrics["epochs_to_fit"] = fit
    return metrics


@pytest.fixture(scope="module")
def report_store(tmp_path_factory) -> Store:
    """Two sweeps (width, then label noise), a probe/control pair, a failed run, an empty
    experiment: realistic runs logged straight with the client."""
    root = tmp_path_factory.mktemp("report-store")
    store = Store(f"sqlite:///{root / 'mlflow.db'}")
    client = mlflow.MlflowClient(store.uri)
    exp = client.create_experiment("memlab", artifact_location=(root / "artifacts").as_uri())
    client.create_experiment("empty", artifact_location=(root / "empty").as_uri())
    clock = [T0]
    sweep = {"memlab.sweep": "parent"}
    width = _run(client, exp, clock, "width_sweep-sweep-numpy_mlp", tags=sweep)
    for hidden, result in WIDTH_SWEEP.items():
        params = {**BASE_PARAMS, "probe.labels.fraction": "1.0", "model.hidden_layer_sizes": hidden}
        _run(
            client, exp, clock, f"w{hidden}", params=params, metrics=_results(*result), parent=width
        )
    labels = _run(client, exp, clock, "label_noise_sweep-sweep-numpy_mlp", tags=sweep)
    for p, result in LABEL_SWEEP.items():
        params = {**BASE_PARAMS, "probe.labels.fraction": p}
        store.runs[f"p={p}"] = _run(
            client, exp, clock, f"p{p}", params=params, metrics=_results(*result), parent=labels
        )
    pair = _run(client, exp, clock, "shuffled_labels", metrics={"epochs_to_fit_ratio": 3.0})
    for arm, result in {"probe": (1.0, 0.1, 60), "control": (1.0, 0.97, 20)}.items():
        params = {**BASE_PARAMS, "probe.labels.fraction": "1.0"}
        _run(
            client,
            exp,
            clock,
            f"shuffled-{arm}",
            params=params,
            metrics=_results(*result),
            tags={"arm": arm},
            parent=pair,
        )
    store.runs["failed"] = _run(
        client,
        exp,
        clock,
        "crashed",
        params={**BASE_PARAMS, "seed": "7"},
        metrics={"train_loss": 2.3},
        status="FAILED",
    )
    store.runs.update(width=width, labels=labels, pair=pair)
    return store


def _report(store: Store, tmp_path: Path, *args: str) -> tuple[int, Path]:
    out = tmp_path / "out"
    return main(["--tracking-uri", store.uri, "--out", str(out), *args]), out


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


def test_label_noise_sweep_report_has_table_files_and_figures(report_store, tmp_path, capsys):
    code, out = _report(report_store, tmp_path, "--parent", report_store.runs["labels"])
    assert code == 0
    grouped = pd.read_csv(out / "table.csv")  # one configuration per p, each of one seed
    assert grouped["probe.labels.fraction"].tolist() == [0.0, 0.5, 1.0]
    assert grouped["test_accuracy"].tolist() == ["0.970 (1)", "0.550 (1)", "0.090 (1)"]
    assert grouped["n_seeds"].tolist() == [1, 1, 1] and grouped["test_accuracy_ci_low"].isna().all()
    table = pd.read_csv(out / "table_seeds.csv")  # the runs themselves
    assert list(table.columns) == [
        "run", "probe.labels.fraction", "final_train_accuracy", "test_accuracy",
        "epochs_to_fit", "epochs", "fit_seconds", "status", "run_id",
    ]  # fmt: skip
    # Logged in the order 0.5, 0.0, 1.0; sorted by p.
    assert table["probe.labels.fraction"].tolist() == [0.0, 0.5, 1.0]
    assert table["run_id"].tolist() == [report_store.runs[f"p={p}"] for p in ("0.0", "0.5", "1.0")]
    for _, row in table.iterrows():
        train, test, fit = LABEL_SWEEP[str(row["probe.labels.fraction"])]
        assert (row["final_train_accuracy"], row["test_accuracy"]) == (train, test)
        assert np.isnan(row["epochs_to_fit"]) if fit is None else row["epochs_to_fit"] == fit
    assert set(table["status"]) == {"FINISHED"}
    # Every final metric over the seeds, the tables' and the others, as the READMEs quote them.
    every = pd.read_csv(out / "metrics.csv")
    assert set(every["metric"]) == {
        *grouped.filter(regex="_estimator$").columns.str[:-10],
        "test_loss",
    }
    shown = every[every["metric"] == "test_accuracy"]
    assert shown["text"].tolist() == grouped["test_accuracy"].tolist()
    assert every.loc[every["metric"] == "test_loss", "estimate"].round(6).tolist() == [
        0.03,
        0.45,
        0.91,
    ]

    md = (out / "table.md").read_text().splitlines()
    assert len(md) == 2 + 3 and "probe.labels.fraction" in md[0] and "run_id" not in md[0]
    assert all(_is_png(out / f) for f in ("accuracy_vs_p.png", "epochs_to_fit_vs_p.png"))
    assert not list(out.glob("*width*"))

    printed = capsys.readouterr().out
    assert printed.index("0.970 (1)") < printed.index("0.550 (1)") < printed.index("0.090 (1)")
    assert "± " not in printed.split("\n", 1)[1] and "wrote" in printed  # one seed: none


def test_latest_sweep_is_the_newest_parent_and_names_the_default_directory(
    report_store, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(["--tracking-uri", report_store.uri, "--latest-sweep"]) == 0
    out = tmp_path / "reports" / "label_noise_sweep-sweep-numpy_mlp"
    table = pd.read_csv(out / "table_seeds.csv")
    assert sorted(table["run_id"]) == sorted(report_store.runs[f"p={p}"] for p in LABEL_SWEEP)


def test_width_sweep_sorts_widths_numerically_and_plots_against_width(report_store, tmp_path):
    code, out = _report(report_store, tmp_path, "--parent", report_store.runs["width"])
    assert code == 0
    for name in ("table.csv", "table_seeds.csv"):
        table = pd.read_csv(out / name)
        assert table["model.hidden_layer_sizes"].tolist() == ["[16]", "[128]"]  # not as text
    assert _is_png(out / "accuracy_vs_width.png") and _is_png(out / "epochs_to_fit_vs_width.png")
    assert not list(out.glob("*_vs_p.png"))


def test_experiment_report_lists_leaf_runs_with_arms_and_marks_failures(
    report_store, tmp_path, capsys
):
    code, out = _report(report_store, tmp_path, "--experiment", "memlab")
    assert code == 0
    table = pd.read_csv(out / "table_seeds.csv", keep_default_na=False, na_values=[""])
    parents = {report_store.runs[k] for k in ("width", "labels", "pair")}
    assert len(table) == len(WIDTH_SWEEP) + len(LABEL_SWEEP) + 2 + 1
    assert not parents & set(table["run_id"])
    assert {"model.hidden_layer_sizes", "probe.labels.fraction", "seed", "arm"} <= set(table)
    assert sorted(table["arm"].dropna()) == ["control", "probe"]
    failed = table[table["run_id"] == report_store.runs["failed"]]
    assert failed["status"].item() == "FAILED" and np.isnan(failed["test_accuracy"].item())
    printed = capsys.readouterr().out
    assert "FAILED *" in printed and "1 run(s) not FINISHED" in printed
    # The failed run is listed but not drawn: the figures use finished runs only.
    assert _is_png(out / "accuracy_vs_p.png")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment", "empty"], "has no runs yet"),
        (["--experiment", "nope"], "no experiment 'nope'"),
        (["--parent", "leaf"], "has no child runs"),
        (["--parent", "0" * 32], "no run with id"),
    ],
)
def test_problems_end_with_one_line_and_exit_1(report_store, tmp_path, capsys, args, message):
    args = [report_store.runs["p=0.0"] if a == "leaf" else a for a in args]
    code, out = _report(report_store, tmp_path, *args)
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and not out.exists()


def test_a_missing_sqlite_store_is_refused_not_created(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'nowhere.db'}"
    assert main(["--tracking-uri", uri]) == 1
    assert "no MLflow store" in capsys.readouterr().err
    assert not (tmp_path / "nowhere.db").exists()


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_build_table_keeps_varied_params_and_sorts_them_as_numbers():
    runs = _frame([
        {"run_id": "a", "status": "FINISHED", "start_time": 1, "tags.mlflow.runName": "a",
         "params.lr": "0.1", "params.seed": "1", "params.p": "10",
         "params.model.hidden_layer_sizes": "[128]", "metrics.test_accuracy": 0.5},
        {"run_id": "b", "status": "FINISHED", "start_time": 2, "tags.mlflow.runName": "b",
         "params.lr": "0.1", "params.seed": "0", "params.p": "2",
         "params.model.hidden_layer_sizes": "[16,16]", "metrics.test_accuracy": 0.7},
        {"run_id": "c", "status": "RUNNING", "start_time": 3, "tags.mlflow.runName": "c",
         "params.lr": "0.1", "params.seed": "0", "params.p": "2",
         "params.model.hidden_layer_sizes": "[16]", "metrics.test_accuracy": np.nan},
    ])  # fmt: skip
    table = build_table(runs)
    # Constant params drop out; the known sweep axis comes first and the seed last.
    assert list(table.columns) == [
        "run", "model.hidden_layer_sizes", "p", "seed", "final_train_accuracy", "test_accuracy",
        "epochs_to_fit", "epochs", "fit_seconds", "status", "run_id",
    ]  # fmt: skip
    assert table["epochs_to_fit"].isna().all()  # never logged: a column of NaN, not missing
    # [16] < [16,16] < [128] (numbers, element by element), not text order.
    assert table["run"].tolist() == ["c", "b", "a"]
    shown = display_table(table)
    assert shown["test_accuracy"].tolist() == ["-", "0.700", "0.500"]
    assert shown["status"].tolist() == ["RUNNING *", "FINISHED", "FINISHED"]

    by_p = build_table(runs.drop(columns="params.model.hidden_layer_sizes"))
    assert by_p["p"].tolist() == ["2", "2", "10"]  # 2 < 10 as numbers
    assert by_p["seed"].tolist() == ["0", "0", "1"]  # ties on p broken by the seed


def test_configuration_table_counts_seeds_that_did_not_fit_instead_of_dropping_them():
    from pipeline.report.table import configuration_table, shown_columns

    # Five seeds; the probe fits in 3 of them (at 10, 30, 40), two stop at 20 and 50 epochs.
    probe = [(10, 10), (None, 20), (30, 30), (40, 40), (None, 50)]
    rows = []
    for seed, (fit, ran) in enumerate(probe):
        for arm, metrics in (
            ("probe", {"metrics.epochs": ran, "metrics.epochs_to_fit": fit}),
            ("control", {"metrics.epochs": 5, "metrics.epochs_to_fit": 5}),
        ):
            rows.append({"run_id": f"{arm}{seed}", "status": "FINISHED", "start_time": seed,
                         "params.seed": str(seed), "params.p": "1.0", "tags.arm": arm,
                         "tags.mlflow.parentRunId": f"job{seed}", **metrics})  # fmt: skip
    results, paired = configuration_table(_frame(rows))
    by_arm = results.set_index("arm")
    # Kaplan-Meier: S = 0.8 at 10, 0.533 at 30, 0.267 at 40: the median is 40, where the
    # survivors' mean would be 26.7.
    assert by_arm.loc["probe", "epochs_to_fit"] == (
        "median 40 [30, not reached] (Kaplan-Meier; 3 of 5 fitted)"
    )
    assert by_arm.loc["probe", "epochs_to_fit_estimator"] == "Kaplan-Meier median"
    assert by_arm.loc["probe", "epochs_to_fit_estimate"] == 40.0
    assert by_arm.loc["control", "epochs_to_fit"] == "5 ± 0 (5 of 5 fitted)"
    ratio = paired["epochs_to_fit_ratio"].item()  # ratios 2, >4, 6, 8, >10: median 8
    assert ratio == "median 8.00 [6.00, not reached] (Kaplan-Meier; 3 of 5 fitted)"
    assert "epochs_to_fit_estimate" not in shown_columns(results)


def test_leaf_runs_descends_through_jobs_to_their_arms():
    runs = _frame([
        {"run_id": "sweep", "tags.memlab.sweep": "parent", "tags.mlflow.parentRunId": None},
        {"run_id": "job", "tags.memlab.sweep": None, "tags.mlflow.parentRunId": "sweep"},
        {"run_id": "probe", "tags.memlab.sweep": None, "tags.mlflow.parentRunId": "job"},
        {"run_id": "control", "tags.memlab.sweep": None, "tags.mlflow.parentRunId": "job"},
        {"run_id": "plain", "tags.memlab.sweep": None, "tags.mlflow.parentRunId": None},
        {"run_id": "empty-sweep", "tags.memlab.sweep": "parent", "tags.mlflow.parentRunId": None},
    ])  # fmt: skip
    assert leaf_runs(runs, "sweep")["run_id"].tolist() == ["probe", "control"]
    assert leaf_runs(runs)["run_id"].tolist() == ["probe", "control", "plain"]
    assert leaf_runs(runs, "plain").empty


def test_plain_markdown_matches_the_tabulate_layout():
    shown = pd.DataFrame({"run": ["a", "b"], "test_accuracy": ["0.500", "-"]})
    ours, theirs = plain_markdown(shown).splitlines(), markdown(shown).splitlines()
    assert len(ours) == len(theirs) == 4
    assert [c.strip() for c in ours[0].strip("|").split("|")] == ["run", "test_accuracy"]
    assert [c.strip() for c in ours[3].strip("|").split("|")] == ["b", "-"]
