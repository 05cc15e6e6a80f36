"""Kill the flagship with SIGKILL at 9 named moments and 5 random ones, run the same command
again in the same folder, and compare each record with that of a run never stopped.

    .venv/bin/python experiments/crash/kill_table.py [--random 5] [--seed 0] [--jobs 2]

Prints a Markdown table (and writes it to experiments/crash/table.md): for each moment, the
exit of the killed job, whether any of its processes (figure workers included) was still alive
5 s later, and what the resumed record lacks or holds twice (``tests/records.py``).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from records import differences, snapshot  # noqa: E402

COMMAND = ["+experiment=shuffled_labels", "train.checkpoint_every=5", "train.progress=false"]


def job(workdir: Path, kill_at: str | None, marker: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MEMLAB_KILL"))}
    env |= {"PYTHONPATH": str(ROOT), "MEMLAB_TEST_MARKER": marker}
    if kill_at:
        env["MEMLAB_KILL_AT"] = kill_at
    argv = [sys.executable, "-m", "pipeline", *COMMAND, f"hydra.run.dir={workdir / 'job'}"]
    return subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def marked(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def trial(workdir: Path, what: str, kill_at: str | None, after: float | None, whole) -> dict:
    workdir.mkdir(parents=True)
    marker = uuid.uuid4().hex
    started = time.monotonic()
    process = job(workdir, kill_at, marker)
    if after is not None:
        try:
            process.wait(timeout=after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
    process.communicate()
    killed_at = time.monotonic() - started
    code = process.returncode
    time.sleep(5)
    left = marked(marker)
    again = job(workdir, None, uuid.uuid4().hex)
    _, stderr = again.communicate()
    found = differences(snapshot(f"sqlite:///{workdir / 'mlflow.db'}"), whole)
    if again.returncode:
        found.insert(0, f"the job run again failed: {stderr.strip().splitlines()[-1]}")
    return {"what": what, "code": code, "at": killed_at, "left": left, "found": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="memlab-kill-"))
    start = time.monotonic()
    (base / "whole").mkdir()
    reference = job(base / "whole", None, "whole")
    _, stderr = reference.communicate()
    assert reference.returncode == 0, stderr
    seconds = time.monotonic() - start
    whole = snapshot(f"sqlite:///{base / 'whole' / 'mlflow.db'}")
    probe = next(runs[0] for name, runs in whole.items() if name.endswith("-probe"))
    epochs = int(probe["metrics"]["epochs"][0][1])
    saves = epochs // 5 + (epochs % 5 != 0)  # every 5 epochs, and at the arm's end
    moments = [
        ("right after the study's run is created", "run-created@1"),
        ("probe checkpoint at epoch 55 saved", "checkpoint-saved@11"),
        ("control checkpoint at epoch 15 saved", f"checkpoint-saved@{saves + 3}"),
        ("mid-training: probe epoch 120 measured, not yet written", "epoch@120"),
        (
            "right after the probe's final metrics (test_accuracy) are stored",
            "arm-metrics-logged@1",
        ),
        ("during the control's model logging (files up, not READY)", "model-files-logged@2"),
        ("right after the control arm is recorded", "arm-recorded@2"),
        ("after 4 of the figures are logged", "figure-logged@4"),
        ("everything logged, the study's run not yet FINISHED", "run-ending@3"),
    ]
    rng = random.Random(args.seed)
    plan = [(what, point, None) for what, point in moments]
    # Within the run (the reference ran alone, the trials two at a time: they take longer).
    moments = sorted(rng.uniform(0.05, 0.85) * seconds for _ in range(args.random))
    plan += [(f"at random, {t:.1f} s", None, t) for t in moments]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(
            pool.map(
                lambda i: trial(base / f"t{i}", plan[i][0], plan[i][1], plan[i][2], whole),
                range(len(plan)),
            )
        )
    command = f"`python -m pipeline {' '.join(COMMAND)} hydra.run.dir=<folder>`"
    lines = [f"Uninterrupted run: {seconds:.0f} s (probe fitted at epoch {epochs}); the command:",
             f"{command}, run again after each kill.", "",
             "| killed | exit | processes left 5 s later | resumed record vs uninterrupted |",
             "| --- | --- | --- | --- |"]  # fmt: skip
    for row in rows:
        verdict = (
            "equal"
            if not row["found"]
            else f"{len(row['found'])} differences: {row['found'][0][:120]}"
        )
        code = row["code"] or "0 (it had finished: not killed)"
        left = len(row["left"]) or "none"
        lines.append(f"| {row['what']} | {code} | {left} | {verdict} |")
    equal = sum(not row["found"] for row in rows)
    killed = sum(row["code"] == -signal.SIGKILL for row in rows)
    clean = sum(not row["left"] for row in rows)
    lines += ["", f"{equal} of {len(rows)} records equal to the uninterrupted run ({killed} jobs "
              f"killed); {clean} of {len(rows)} left no process."]  # fmt: skip
    header = [
        "# The flagship killed with SIGKILL at 14 moments, then run again",
        "",
        f"Made by `.venv/bin/python experiments/crash/kill_table.py` ({time.strftime('%Y-%m-%d')}; "
        "the moments are the kill points of `pipeline/runtime/faults.py`, counted in the run).",
        "",
    ]
    text = "\n".join(header + lines)
    print(text)
    (Path(__file__).parent / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
