"""The MLflow UI, looked at in a real browser, shows what a small real sweep recorded.

A label-noise sweep (two jobs, three epochs each) fills a temporary store; ``mlflow server``
serves it on a free local port, and Debian's Chromium, driven by Playwright, checks what a
person would look at:

- the ``memlab`` experiment opens on its runs table (the model-training view);
- the sweep's parent row is there and expands to its children;
- a child's ``train_accuracy`` chart gets one point per epoch (counted in the metric history
  the chart itself fetches);
- a child's figures are listed among its artifacts;
- a run shows its datasets (the runs table's Dataset column and the run page).

Screenshots are saved under pytest's temporary directory, and their paths printed. MLflow's UI
polls the server, so every step waits on an element, never on the network going idle.

Needs ``/usr/bin/chromium`` (``.ci/run`` installs Debian's ``chromium``; ``playwright install``
cannot download browsers on these machines).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import clean_env, run_cli

from pipeline.tracking.ui import experiment_link

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EPOCHS = 3
PARENT = "label_noise_sweep-sweep-numpy_mlp"
FIGURES = ("learning_curves.png", "confusion_matrix.png", "first_layer_weights.png")
WAIT_MS = 60_000
# The x values (steps) of each trace of the Plotly chart whose title is exactly ``title``.
CHART_STEPS = """(title) => {
  const heads = [...document.querySelectorAll('*')]
    .filter(e => e.children.length === 0 && e.textContent.trim() === title);
  for (const head of heads) {
    let card = head;
    while (card && !card.querySelector('.js-plotly-plot')) card = card.parentElement;
    const plot = card && card.querySelector('.js-plotly-plot');
    if (plot && plot.data) return plot.data.map(trace => Array.from(trace.x || []));
  }
  return null;
}"""  # the UI's first load on a busy 2-core machine

# Without chromium the test is skipped, except where MEMLAB_REQUIRE_BROWSER is set (.ci/run):
# there a missing browser fails, so CI can never pass without having looked at the UI.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("MEMLAB_REQUIRE_BROWSER"),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(base: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"mlflow server did not answer on {base} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def ui_store_dir(tmp_path_factory) -> Path:
    """A folder whose store (``mlflow.db``) holds one small real sweep: label noise p = 0 and 1,
    EPOCHS epochs each."""
    workdir = tmp_path_factory.mktemp("ui-store")
    done = run_cli(
        workdir,
        "-m",
        "+experiment=label_noise_sweep",
        f"model.max_epochs={EPOCHS}",
        "model.hidden_layer_sizes=[32]",
        "train.stop_at_fit=false",
        "probe.labels.fraction=0.0,1.0",
        "train.progress=false",
        "train.record_examples=false",  # the pages looked at show none of its five figures
        f"mlflow.tracking_uri=sqlite:///{workdir / 'mlflow.db'}",
    )
    assert done.returncode == 0, done.stderr
    return workdir


@pytest.fixture(scope="module")
def ui(ui_store_dir: Path):
    """``mlflow server`` on a free 127.0.0.1 port over ``ui_store_dir``'s store; stopped when
    the tests end."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    log = (ui_store_dir / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{ui_store_dir / 'mlflow.db'}",
        ],
        cwd=ui_store_dir,
        env=clean_env(pythonpath=None),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped whole, workers included
    )
    try:
        wait_for_health(base, server)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def page(ui, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            tab.set_default_timeout(WAIT_MS)
            yield tab
        finally:
            browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request):
    """Where screenshots go (``$MEMLAB_UI_SCREENSHOTS``, else pytest's temporary directory)."""
    chosen = os.environ.get("MEMLAB_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder, request.config.pluginmanager.getplugin("capturemanager")


def screenshot(page, shots, name: str) -> Path:
    """Save what the browser shows as a PNG a person can open, and say where (even if passed)."""
    folder, capture = shots
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    with capture.global_and_fixture_disabled():  # printed even when the test passes
        print(f"\nscreenshot: {path}")
    return path


def experiment_id(base: str) -> str:
    url = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=memlab"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)["experiment"]["experiment_id"]


def test_the_runs_table_shows_the_sweep_and_its_children(ui, page, shots):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(experiment_link(experiment_id(ui), ui))
    parent = page.locator(".ag-row", has_text=PARENT).first
    try:
        parent.wait_for()
    except PlaywrightTimeout:
        shot = screenshot(page, shots, "no-runs")
        pytest.fail(f"the UI shows no run {PARENT!r} after {WAIT_MS / 1000:.0f} s (see {shot})")
    assert page.get_by_role("columnheader", name="Dataset").first.is_visible()
    children = page.locator(".ag-row", has_text="numpy_mlp-label_noise_sweep-p=")
    assert children.count() == 0  # collapsed under the parent
    parent.locator("button[data-component-id*='runnamecellrenderer']").first.click()
    children.nth(1).wait_for()
    assert children.count() == 2
    # The children's Dataset column names what each trained on.
    page.locator(".ag-row", has_text="digits-train (labels shuffle 100%)").first.wait_for()
    screenshot(page, shots, "runs-table")


def child_run(base: str, fraction: str) -> dict:
    """The sweep child with ``probe.labels.fraction`` = ``fraction``, as the REST API has it."""
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/runs/search",
        data=json.dumps(
            {
                "experiment_ids": [experiment_id(base)],
                "filter": f"params.`probe.labels.fraction` = '{fraction}'",
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        (run,) = json.load(answer)["runs"]
    return run


def test_a_child_page_shows_its_datasets_chart_and_figures(ui, page, shots):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    run = child_run(ui, "1.0")
    run_id = run["info"]["run_id"]
    run_page = f"{ui}/#/experiments/{experiment_id(ui)}/runs/{run_id}"
    page.goto(f"{run_page}?workflowType=machine_learning")
    page.get_by_text("digits-train (labels shuffle 100%)").first.wait_for()
    assert page.get_by_text("Datasets", exact=True).first.is_visible()
    screenshot(page, shots, "run-page")

    # The train_accuracy chart, as Plotly drew it: the steps of its traces.
    page.goto(f"{run_page}/model-metrics?workflowType=machine_learning")
    page.get_by_placeholder("Search metric charts").fill("train_accuracy")
    try:  # the chart may draw the latest value first and the history when it has come
        page.wait_for_function(
            f"t => ({CHART_STEPS})(t)?.[0]?.length === {EPOCHS}", arg="train_accuracy"
        )
    except PlaywrightTimeout:
        pass  # the assertion below says what was drawn instead
    traces = page.evaluate(CHART_STEPS, "train_accuracy")
    assert traces, "no train_accuracy chart was drawn"
    assert all(steps == list(range(1, EPOCHS + 1)) for steps in traces), traces
    screenshot(page, shots, "model-metrics")

    page.goto(f"{run_page}/artifacts?workflowType=machine_learning")
    for figure in FIGURES:
        page.get_by_text(figure, exact=True).first.wait_for()
    screenshot(page, shots, "artifacts")


def test_chromium_is_there():
    assert CHROMIUM.exists(), "apt-get install chromium (.ci/run does)"
