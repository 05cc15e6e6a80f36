"""DVC stage ``figures``: the pictures of what ``train``, ``evaluate`` and ``memorize`` wrote.

The stages that train or evaluate record no figures, so that a figure's code is none of their
dependencies: changing a colour in ``pipeline/report/figures.py`` reruns this stage alone, not
the trainings. This one draws, from the files those stages wrote, the pictures
``python -m pipeline`` draws for a run: the learning curves (``repro/plots/train.csv``), the
confusion matrix on the test split (``repro/plots/confusion.csv``), the first hidden layer's
weights (``repro/model``), and both memorization arms' curves
(``repro/plots/memorize/{probe,control}.csv``). They go into one MLflow run tagged
``dvc_stage=figures``; the stage writes no file, so ``repro/`` holds only numbers.
"""

from __future__ import annotations

import numpy as np

from pipeline.models import model_name
from pipeline.models.weights import load_model
from pipeline.report.figures import confusion_matrix_figure, learning_curves, weight_tiles
from pipeline.stages import common, stage_run
from pipeline.study.evaluate import confusion_matrix

STAGE = "figures"


def history(table: dict[str, list]) -> dict[str, list]:
    """A ``curves`` table (``repro/plots/*.csv``) back as per-epoch history, without ``epoch``."""
    return {name: values for name, values in table.items() if name != "epoch"}


def main() -> None:
    from pipeline.runtime import figure_pool
    from pipeline.tracking import painter

    params = common.stage_params(STAGE)
    _, data = common.load_splits(common.SPLITS)
    model = load_model(common.MODEL)
    name = model_name(model)
    tags = {"model": name, "data_fingerprint": data.fingerprint, "data": data.name}
    run_name = f"dvc-{STAGE}-{name}-seed{model.random_state}"
    figure_pool.start(0)  # a handful of figures: drawn here, no worker processes to start
    with stage_run.stage_run(STAGE, params, name=run_name, tags=tags) as run:
        train = history(common.read_table(common.PLOTS / "train.csv"))
        painter.paint(run, "learning_curves.png", learning_curves, train, title="train")
        table = common.read_table(common.PLOTS / "confusion.csv")
        actual, predicted = (np.asarray(table[c], dtype=np.int64) for c in ("actual", "predicted"))
        matrix = confusion_matrix(actual, predicted, data.n_classes)
        painter.paint(
            run, "confusion_matrix.png", confusion_matrix_figure, matrix, title="held-out test"
        )
        painter.paint(
            run,
            "first_layer_weights.png",
            weight_tiles,
            model.coefs_[0],
            data.image_shape,
            title="first hidden layer:\nwhat is each neuron looking for?",
        )
        for arm in ("probe", "control"):
            curves = history(common.read_table(common.PLOTS / "memorize" / f"{arm}.csv"))
            file = f"memorize/{arm}_learning_curves.png"
            painter.paint(run, file, learning_curves, curves, title=f"memorize: {arm}")


if __name__ == "__main__":
    common.run_stage(main)
