"""Checkpoints: a run's training state on disk, so that a stopped job goes on to the same bits.

With ``train.checkpoint_every=N``, every N epochs, and when it is trained, each arm's state is
written into the run's output folder: ``checkpoint/<arm>-epoch<N>.npz`` (weights, momentum, the
per-example record so far) and ``checkpoint/<arm>.json`` (the batch-order generator's state,
the counts, the history and the name of its arrays). Running the same command again in the
same folder (``hydra.run.dir=<folder>``; a requeued SLURM job runs in its own folder again by
itself) finds them and trains on from the last checkpoint: the result is the very same bits
as a run that was never stopped. The checkpoint is the truth of an arm's history: the epochs
it holds are told again to whoever records them (``pipeline.study.train.train_epochs``), so a
record that lost its last epochs when the job was killed gets them back.

Files are written whole or not at all (a temporary file, then a rename), and each
checkpoint's arrays have a file of their own: a job stopped between writing the new arrays and
the json that names them goes on from the previous checkpoint, whole, never from its json
with the new arrays. A write that fails (a full disk) removes its temporary file and ends the
run in one line.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from pipeline.arrays import load_arrays, save_arrays
from pipeline.errors import MemlabError
from pipeline.models import model_classes, model_name
from pipeline.runtime import faults
from pipeline.study.results import ArmResult
from pipeline.study.run import Arm, StudyObserver
from pipeline.study.train import TrainResult

_EXAMPLES = ("correct", "label_proba")  # TrainResult's per-example arrays


def _write(path: Path, write) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it into place; a
    write that fails leaves nothing behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise MemlabError(
                f"cannot write the checkpoint {path} ({os.strerror(err.errno)}): free space "
                "or fix the folder's permissions, then run the same command again to go on "
                "from the last checkpoint"
            ) from None
        raise


class Checkpoints:
    """The checkpoints of one run, in ``folder``; ``every`` epochs (0: never)."""

    def __init__(self, folder: Path, every: int):
        self.folder, self.every = Path(folder), int(every)

    def _json(self, name: str) -> dict | None:
        path = self.folder / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def due(self, result: TrainResult) -> bool:
        return self.every > 0 and result.epochs % self.every == 0

    def save(self, arm: str, model, result: TrainResult) -> None:
        """Write ``arm``'s state after ``result.epochs`` epochs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays, values = model.training_state()
        arrays = {f"model_{k}": v for k, v in arrays.items()}
        arrays |= {k: getattr(result, k) for k in _EXAMPLES if getattr(result, k) is not None}
        meta = {
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
        faults.point("checkpoint-arrays-written")
        text = json.dumps(meta) + "\n"
        _write(self.folder / f"{arm}.json", lambda tmp: tmp.write_text(text))
        for old in self.folder.glob(f"{arm}-epoch*.npz"):  # earlier ones, and any left half-way
            if old.name != meta["arrays"]:
                old.unlink(missing_ok=True)
        faults.point("checkpoint-saved")

    def load(self, arm: str) -> tuple[object, TrainResult] | None:
        """``(model, result)`` as ``arm`` was last saved, ready to train on; None if never."""
        meta = self._json(arm)
        if meta is None or "model" not in meta:  # none yet (or only the run named: older)
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


class Checkpointer(StudyObserver):
    """The study's checkpoints as an observer: each arm goes on from its last checkpoint, one
    is saved every ``checkpoints.every`` epochs and one when the arm is trained (so a job
    stopped while the arm is recorded does not train it again)."""

    def __init__(self, checkpoints: Checkpoints):
        self.checkpoints = checkpoints

    def resume(self, arm: Arm):
        return self.checkpoints.load(arm.name) if self.checkpoints.every else None

    def checkpoint(self, arm: Arm, model, result: TrainResult) -> None:
        if self.checkpoints.due(result):
            self.checkpoints.save(arm.name, model, result)

    def arm_finished(self, result: ArmResult) -> None:
        if self.checkpoints.every and not self.checkpoints.due(result.training):
            self.checkpoints.save(result.name, result.model, result.training)
