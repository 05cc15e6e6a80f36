"""A store's whole record, in a form two stores can be compared by: what a resumed job must
leave exactly as a job never stopped does."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

# Tags that differ between any two jobs: who ran them, where, and MLflow's own ids and times.
VOLATILE_TAGS = {"memlab.host", "memlab.pid", "memlab.pid_started", "memlab.run_dir",
                 "model_uri", "mlflow.parentRunId", "mlflow.log-model.history"}  # fmt: skip


def _artifacts(client, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return found


def _digest(client, run_id: str, path: str) -> str:
    """The first hex digits of an artifact's SHA-256 (a store with local artifacts)."""
    from urllib.parse import urlsplit

    root = urlsplit(client.get_run(run_id).info.artifact_uri).path
    return hashlib.sha256((Path(root) / path).read_bytes()).hexdigest()[:16]


def snapshot(uri: str, experiment: str = "memlab") -> dict:
    """Every run of ``experiment`` in the store at ``uri``, by name: status, params, tags,
    each metric's (step, value) history (timings: steps only), artifacts with their contents'
    digests, models and datasets. Runs of the same name are listed together."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=1000)
    record = defaultdict(list)
    for run in runs:
        run_id = run.info.run_id
        metrics = {}
        for key in run.data.metrics:
            if key.startswith("system/"):  # the machine's load while it ran: no two alike
                continue
            history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
            metrics[key] = [step for step, _ in history] if "seconds" in key else history
        models = client.search_logged_models(
            [experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        record[run.info.run_name].append(
            {
                "status": run.info.status,
                "params": dict(run.data.params),
                "tags": {
                    k: v
                    for k, v in run.data.tags.items()
                    if k not in VOLATILE_TAGS
                    and not k.startswith("mlflow.source")
                    and k not in ("mlflow.user",)
                },  # fmt: skip
                "metrics": metrics,
                "artifacts": {p: _digest(client, run_id, p) for p in _artifacts(client, run_id)},
                "models": sorted((m.name, str(m.status)) for m in models),
                "datasets": sorted(
                    (
                        d.dataset.name,
                        d.dataset.digest,
                        tuple(sorted((t.key, t.value) for t in d.tags)),
                    )
                    for d in run.inputs.dataset_inputs
                ),
            }
        )
    return dict(record)


def differences(ours: dict, theirs: dict, where: str = "") -> list[str]:
    """Where two snapshots differ, one line each (empty: the same record)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(ours) | set(theirs), key=str):
            if key not in ours or key not in theirs:
                found.append(f"{where}/{key}: only in {'ours' if key in ours else 'theirs'}")
            else:
                found += differences(ours[key], theirs[key], f"{where}/{key}")
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) != len(theirs):
        return [f"{where}: {len(ours)} items against {len(theirs)}"]
    if isinstance(ours, list) and isinstance(theirs, list) and ours and isinstance(ours[0], dict):
        return [
            d
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    return [] if ours == theirs else [f"{where}: {str(ours)[:200]} != {str(theirs)[:200]}"]
