"""The progress bar: one tqdm bar per arm on stderr, as an observer of the study."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pipeline.study.run import Arm, EpochCallback, StudyObserver


class ProgressBar(StudyObserver):
    """A bar per arm, labelled with the arm's name (``label`` for a study of one arm).

    ``progress``: ``auto`` shows it only on a terminal, ``True`` always, ``False`` never.
    """

    def __init__(self, progress: str | bool = "auto", label: str = "run"):
        self.disable = {"auto": None, True: False, False: True}[progress]
        self.label = label

    @contextlib.contextmanager
    def arm(self, arm: Arm, max_epochs: int) -> Iterator[EpochCallback]:
        from tqdm.auto import tqdm

        label = self.label if arm.name == "run" else arm.name
        bar = tqdm(total=max_epochs, desc=label, unit="epoch", disable=self.disable, leave=False)
        with contextlib.closing(bar):

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                bar.update(1)
                loss, accuracy = metrics["train_loss"], metrics["train_accuracy"]
                bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.3f}")

            yield on_epoch
