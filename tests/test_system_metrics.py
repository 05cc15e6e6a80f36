"""Every run records MLflow's system metrics (its "System metrics" tab), and the thread that
samples them neither outlives the run nor keeps the process alive."""

from __future__ import annotations

import threading
import time

from pipeline.tracking import store as tracking


def test_a_run_records_cpu_and_memory_and_its_sampler_stops_with_it(store):
    with tracking.run("sampled", tags={}) as run_id:
        time.sleep(1.5)  # one sample a second
        samplers = [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor"]
        assert samplers and all(t.daemon for t in samplers)  # never holds the process up
    metrics = store.get_run(run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics
    assert "system/system_memory_usage_megabytes" in metrics
    assert not [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor"]
