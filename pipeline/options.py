"""The closed sets a setting chooses from, and the constraints on the study's own values.

One leaf module that everyone reads: the settings edge checks a config against these
(``pipeline.settings.CONSTRAINTS``), the study core dispatches on the same names
(``pipeline.study.probes``, ``pipeline.study.noise``) and trusts what the settings let
through, and the README and ``conf/`` comments list them. It imports nothing of memlab but
the constraint vocabulary (``pipeline.constraints``), so any layer may import it and it may
import no layer: that keeps the settings from reaching up into the core for a table.
The datasets (``pipeline.data.datasets.DATASETS``) and the models (``pipeline.models.MODELS``)
name themselves where they are defined, since a name there is its loader or its class.
"""

from __future__ import annotations

from pipeline.constraints import Number

# probe.labels.mode: how the chosen training labels are corrupted
# (``pipeline.study.probes.corrupt_labels``).
LABEL_MODES = ("shuffle", "random", "asymmetric")
# probe.inputs: what replaces the training images (``pipeline.study.probes.randomize_inputs``).
INPUT_KINDS = ("none", "shuffled_pixels", "random_pixels", "gaussian")
# probe.noise.kinds: the noise a trained model is shown (``pipeline.study.noise.noise_images``).
NOISE_KINDS = ("uniform", "gaussian")
# label_issues.rank_by: the rankings of +experiment=label_issues, each a score of every pool
# example (``pipeline.study.label_issues.SUSPICION`` gives each one's direction).
LABEL_ISSUE_RANKINGS = (
    "self_confidence",
    "normalized_margin",
    "aum",
    "confidence",
    "variability",
    "forgetting_events",
    "learned_epoch",
    "cleanlab",
)

# probe.labels.fraction: the share of training labels corrupted; 0 is the clean run.
FRACTION = Number(low=0, high=1)
# split.train, split.val, split.test: each part's share of the pool (and they add up to 1,
# which ``pipeline.settings.SplitSettings`` checks, being about three keys at once).
SPLIT_FRACTION = Number(low=0, high=1, low_open=True, high_open=True)
