"""Checkpoints: a run's training state on disk, so that a killed job goes on to the same bits.

With ``train.checkpoint_every=N``, every N epochs each arm's state is written into the run's
output folder: ``checkpoint/<arm>-epoch<N>.npz`` (weights, momentum, the per-example record so
far) and ``checkpoint/<arm>.json`` (the batch-order generator's state, the counts and the
history, the arm's MLflow run id and the name of its arrays); ``checkpoint/study.json`` names
the run. Running the same command again in the same folder (``hydra.run.dir=<folder>``; a
requeued SLURM job runs in its own folder again by itself) finds them, reopens the same MLflow
runs and trains on from the last checkpoint: the result is the very same bits as a run that was
never stopped. Files are written whole or not at all (a temporary file, then a rename), and
each checkpoint's arrays have a file of their own: a job stopped between writing the new arrays
and the json that names them goes on from the previous checkpoint, whole, never from its json
with the new arrays.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline.arrays import load_arrays, save_arrays
from pipeline.models import model_classes, model_name
from pipeline.study.train import TrainResult

_EXAMPLES = ("correct", "label_proba")  # TrainResult's per-example arrays


def _write(path: Path, write) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


class Checkpoints:
    """The checkpoints of one run, in ``folder``; ``every`` epochs (0: never)."""

    def __init__(self, folder: Path, every: int):
        self.folder, self.every = Path(folder), int(every)

    def _json(self, name: str) -> dict | None:
        path = self.folder / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def run_id(self) -> str | None:
        """The run a checkpoint was made for: the run to go on with, or None (a fresh start)."""
        found = self._json("study")
        return found["run_id"] if found else None

    def save_run(self, run_id: str) -> None:
        if self.every:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"run_id": run_id}) + "\n"
            _write(self.folder / "study.json", lambda tmp: tmp.write_text(text))

    def arm_run(self, arm: str) -> str | None:
        """The MLflow run of ``arm`` when it was checkpointed, else None."""
        found = self._json(arm)
        return found["run_id"] if found else None

    def start_arm(self, arm: str, run_id: str) -> None:
        """Name ``arm``'s MLflow run before its first checkpoint, so a resumed job reuses it."""
        if self.every:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"run_id": run_id}) + "\n"
            _write(self.folder / f"{arm}.json", lambda tmp: tmp.write_text(text))

    def recorded(self, arm: str) -> bool:
        """Whether ``arm`` was trained to its end and recorded before the job stopped."""
        found = self._json(arm)
        return bool(found and found.get("recorded"))

    def due(self, result: TrainResult) -> bool:
        return self.every > 0 and result.epochs % self.every == 0

    def save(self, arm: str, run_id: str, model, result: TrainResult, recorded=False) -> None:
        """Write ``arm``'s state after ``result.epochs`` epochs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays, values = model.training_state()
        arrays = {f"model_{k}": v for k, v in arrays.items()}
        arrays |= {k: getattr(result, k) for k in _EXAMPLES if getattr(result, k) is not None}
        meta = {
            "run_id": run_id,
            "recorded": recorded,
            "model": model_name(model),
            "model_state": values,
            "history": result.history,
            "epochs": result.epochs,
            "epochs_to_fit": result.epochs_to_fit,
            "fit_seconds": result.fit_seconds,
        }
        # The arrays first, in a file of this epoch's own: the json names a complete state only
        # once its arrays are in place, and until it is replaced it names the previous arrays.
        meta["arrays"] = f"{arm}-epoch{result.epochs}.npz"
        _write(self.folder / meta["arrays"], lambda tmp: save_arrays(tmp, arrays))
        text = json.dumps(meta) + "\n"
        _write(self.folder / f"{arm}.json", lambda tmp: tmp.write_text(text))
        for old in self.folder.glob(f"{arm}-epoch*.npz"):  # earlier ones, and any left half-way
            if old.name != meta["arrays"]:
                old.unlink(missing_ok=True)

    def load(self, arm: str) -> tuple[object, TrainResult] | None:
        """``(model, result)`` as ``arm`` was last saved, ready to train on; None if never."""
        meta = self._json(arm)
        if meta is None or "model" not in meta:  # none yet, or only its run named
            return None
        arrays = load_arrays(self.folder / meta.get("arrays", f"{arm}.npz"))
        state = {k.removeprefix("model_"): v for k, v in arrays.items() if k.startswith("model_")}
        model = model_classes()[meta["model"]].resume_training(state, meta["model_state"])
        result = TrainResult(
            history={k: list(v) for k, v in meta["history"].items()},
            epochs=meta["epochs"],
            epochs_to_fit=meta["epochs_to_fit"],
            fit_seconds=meta["fit_seconds"],
            correct=arrays.get("correct"),
            label_proba=arrays.get("label_proba"),
        )
        return model, result
