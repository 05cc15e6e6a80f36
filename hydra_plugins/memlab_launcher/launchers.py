"""``hydra/launcher=submitit_local`` and ``hydra/launcher=submitit_slurm``, memlab's way.

The launchers are hydra-submitit-launcher's, with ``pipeline.launcher``'s behaviour mixed in
(wait for every job, print each job's summary, one line for failed jobs). The presets below
replace the plugin's two configs of the same names; every field stays overridable on the command
line (``hydra.launcher.partition=gpu``) or in a team preset, e.g.
``conf/hydra/launcher/mycluster.yaml`` with ``defaults: [submitit_slurm]`` and its own values.
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this file outside sys.modules,
# where dataclasses cannot resolve string annotations.
from dataclasses import dataclass, field

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra_plugins.hydra_submitit_launcher import config as plugin_config
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin

from pipeline.launcher import SweepJobs


class LocalLauncher(SweepJobs, plugin.LocalLauncher):
    """Each job a local process, exactly as on a cluster (a cluster sweep tried on a laptop)."""


class SlurmLauncher(SweepJobs, plugin.SlurmLauncher):
    """The sweep as one SLURM job array."""


@dataclass
class LocalConf(plugin_config.LocalQueueConf):
    _target_: str = "hydra_plugins.memlab_launcher.launchers.LocalLauncher"
    # job logs: <submitit_folder>/<job>_<n>_log.out / .err (the sweep's one error line names them)
    cpus_per_task: int | None = 1


@dataclass
class SlurmConf(plugin_config.SlurmQueueConf):
    """The sweep folder (``hydra.sweep.dir``) and the venv must be on a filesystem the nodes
    share; track through an MLflow server (``mlflow.tracking_uri=http://...``), never SQLite
    on NFS. See docs/cluster.md."""

    _target_: str = "hydra_plugins.memlab_launcher.launchers.SlurmLauncher"
    name: str = "memlab"  # the job name squeue shows
    partition: str | None = None  # --partition (None: the cluster's default)
    account: str | None = None  # --account
    timeout_min: int = 60  # --time in minutes; at the limit SLURM sends SIGTERM (run: KILLED)
    cpus_per_task: int | None = 2  # --cpus-per-task (NumPy's BLAS threads use them)
    mem_gb: int | None = 4  # --mem in GB (digits needs far less, wide MNIST nets more)
    array_parallelism: int = 64  # at most this many jobs of the array at once
    # Shell lines at the top of each job script, before Python (modules, the venv, threads).
    setup: list[str] | None = field(
        default_factory=lambda: ["export OMP_NUM_THREADS=${hydra.launcher.cpus_per_task}"]
    )


class Presets(SearchPathPlugin):
    """Registers the two presets once every plugin is loaded, so that they replace the plugin's.

    Hydra loads plugin modules in an order that depends on ``sys.path`` (and loads the
    submitit plugin's config module itself), so registering at import could be undone; Hydra
    calls every search-path plugin after loading them all and before composing the config.
    """

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for name, node in (("submitit_local", LocalConf), ("submitit_slurm", SlurmConf)):
            ConfigStore.instance().store(
                group="hydra/launcher", name=name, node=node, provider="memlab"
            )
