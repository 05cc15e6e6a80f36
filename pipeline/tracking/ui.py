"""Links into ``mlflow ui`` that open on model training, not on MLflow 3's GenAI pages.

MLflow 3.17's UI chooses between its two views (the "GenAI" / "Model training" switch at the
top of the sidebar) from the link's ``workflowType`` query parameter, else from what the browser
last chose, and a new browser starts on GenAI, whose experiment page shows traces and
judges. The ``mlflow.experimentKind`` experiment tag (set by ``store.configure``) is the
experiment's type, which the UI shows, and from which it picks the view only when that switch is
turned off; links with ``workflowType=machine_learning`` open on the runs table either way.
"""

from __future__ import annotations

DEFAULT_UI = "http://127.0.0.1:5000"
MODEL_TRAINING = "workflowType=machine_learning"


def experiment_link(experiment_id: str, base: str = DEFAULT_UI) -> str:
    """The runs table of ``experiment_id`` in the model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING}"


def run_link(run_id: str, base: str = DEFAULT_UI) -> str:
    """The page of ``run_id`` (in the store MLflow is pointed at) in the model-training view."""
    from mlflow.tracking import MlflowClient

    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"
