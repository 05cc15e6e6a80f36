"""DVC stage ``evaluate``: the trained model on the held-out data it has never seen.

Reloads the saved model (so the files are proven to predict as the trained model did) and
writes validation and test loss and accuracy (``repro/metrics/evaluate.json``, from the study
core's ``assess``) and one ``actual,predicted`` row per test image
(``repro/plots/confusion.csv``, which ``dvc plots`` draws as a confusion matrix); MLflow gets
the same metrics and the matrix as a table.
"""

from __future__ import annotations

from pipeline.stages import common, stage_run
from pipeline.study.evaluate import confusion_matrix
from pipeline.study.run import assess

STAGE = "evaluate"


def main() -> None:
    from pipeline.tracking import store

    params = common.stage_params(STAGE)
    with stage_run.model_stage(STAGE, params) as (run, model, splits, data):
        metrics = {}
        for part, scores in assess(model, splits).items():
            metrics.update(scores.metrics(part))
        predicted = model.predict(splits.X_test)
        matrix = confusion_matrix(splits.y_test, predicted, data.n_classes)
        store.log_metrics(run, metrics)
        store.log_dict(run, {"rows_true_cols_predicted": matrix.tolist()}, "confusion_matrix.json")
        common.write_json(common.METRICS / "evaluate.json", metrics)
        columns = {"actual": splits.y_test, "predicted": predicted}
        common.write_table(common.PLOTS / "confusion.csv", columns)


if __name__ == "__main__":
    common.run_stage(main)
