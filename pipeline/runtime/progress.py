"""The progress bars on stderr: one per arm, as an observer of the study; one over a study's
models (:func:`models_bar`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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


@contextlib.contextmanager
def models_bar(total: int, progress: str | bool = "auto") -> Iterator[Callable[..., None]]:
    """A bar over a study's ``total`` models (``progress`` as for :class:`ProgressBar`); yields
    the callback each trained model calls, whatever it is given."""
    from tqdm.auto import tqdm

    disable = {"auto": None, True: False, False: True}[progress]
    with contextlib.closing(tqdm(total=total, desc="models", disable=disable, leave=False)) as bar:
        yield lambda *_: bar.update(1)
