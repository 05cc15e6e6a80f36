"""Hydra's submitit launchers (``hydra/launcher=submitit_local`` / ``submitit_slurm``), made to
end a sweep the way memlab ends a run (the launcher classes and their presets are in
``hydra_plugins/memlab_launcher/launchers.py``, where Hydra looks for plugins).

The plugin's own launcher waits for its jobs in order and raises at the first failed one: the
sweep ends in a multi-line ``UncompletedJobError`` while later jobs still run, and each job's
summary is only in its log file. Mixed into the plugin's launchers, ``SweepJobs`` runs the
same jobs the same way (SLURM job arrays, or local processes), but

- in the job: a job that fails (memlab's one-line error, or a traceback) returns a FAILED result
  instead of crashing submitit, and what it printed travels back with its result;
- in the launching process: every job is waited for (a failed or killed one does not stop the
  wait); each job's printout is shown as its job ends; then the sweep's parent run is closed
  (``pipeline.sweep.end_sweep``) and, if jobs failed, the sweep ends with one line naming them
  and their log files, and exit status 1.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """A sweep job ended without a result (its run is FAILED or KILLED in MLflow)."""


class _Tee(io.TextIOBase):
    """Writes to the job's log (as before) and keeps a copy to send back to the user."""

    def __init__(self, stream):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


class SweepJobs:
    """The behaviour shared by the local and the SLURM launcher (mixed in before the plugin's)."""

    def __call__(self, sweep_overrides: list[str], *args: Any) -> JobReturn:
        """Run one job (in the job's process): a result even when the job fails."""
        tee = _Tee(sys.stdout)
        try:
            with contextlib.redirect_stdout(tee):
                result = super().__call__(sweep_overrides, *args)
        except SystemExit as exit:  # memlab's one-line error (printed to the job's stderr)
            if exit.code in (0, None):
                raise
            result = JobReturn(overrides=list(sweep_overrides), status=JobStatus.FAILED)
            result.return_value = JobFailed(f"exit status {exit.code}")
        result.memlab_output = tee.copy.getvalue()
        return result

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        """Submit every job, wait for all of them, close the parent, report failures in a line."""
        from submitit.core.utils import UncompletedJobError

        from pipeline.sweep import end_sweep, sweep_parent_id

        try:
            jobs = self._submit(job_overrides, initial_job_idx)
        except RuntimeError as err:  # e.g. submitit_slurm where there is no SLURM
            end_sweep("FAILED")
            print(f"error: cannot submit the sweep's jobs: {err}", file=sys.stderr)
            sys.exit(1)
        common = set.intersection(*(set(o) for o in job_overrides))
        results, failed = [], []
        for idx, (job, overrides) in enumerate(zip(jobs, job_overrides, strict=True)):
            try:
                result = job.results()[0]
            except UncompletedJobError as err:  # killed, out of memory, out of time: no result
                result = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
                result.return_value = JobFailed(str(err).strip().splitlines()[0])
            output = getattr(result, "memlab_output", "")
            if output:
                print(output, end="" if output.endswith("\n") else "\n", flush=True)
            if result.status == JobStatus.FAILED:
                named = " ".join(filter_overrides([o for o in overrides if o not in common]))
                failed.append(f"#{initial_job_idx + idx} ({named}): {_relative(job.paths.stderr)}")
            results.append(result)
        if failed:
            parent = sweep_parent_id()
            status = end_sweep()
            print(
                f"error: {len(failed)} of {len(jobs)} sweep jobs failed (parent run {parent} "
                f"{status}); their logs: {'; '.join(failed)}",
                file=sys.stderr,
            )
            sys.exit(1)
        return results

    def _submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        """The plugin's ``launch`` (hydra-submitit-launcher 1.2), up to the submitted jobs."""
        import submitit

        params = self.params
        init_keys = {"max_num_timeout", "submitit_folder"}
        init = {"folder": params["submitit_folder"]}
        if "max_num_timeout" in params:  # SLURM only: how often a timed-out job is requeued
            init[f"{self._EXECUTOR}_max_num_timeout"] = params["max_num_timeout"]
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                k if k in base else f"{self._EXECUTOR}_{k}": v
                for k, v in params.items()
                if k not in init_keys
            }
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {sweep_dir}")
        for i, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + i} : {' '.join(filter_overrides(overrides))}")
        job_params = [
            (list(o), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}")
            for i, o in enumerate(job_overrides)
        ]
        state = Singleton.get_state()
        return executor.map_array(self, *zip(*[(*p, state) for p in job_params], strict=True))


def _relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(path).resolve().relative_to(Path.cwd()))
    return str(path)
