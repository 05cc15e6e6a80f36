"""Where models logged before the study core (issue 8) find their loader; nothing else uses it.

A NumpyMLP logged to MLflow by memlab up to then carries a model file that says
``from pipeline.model_logging import NumpyMLPModel``. In a fresh process that import finds
the copy of ``pipeline`` stored with the model; in one that has already imported this package
(a notebook, the report) it finds this module, and the model still loads, read by today's
code (``pipeline.tracking.models``), which reads the files those models hold.
"""

from pipeline.tracking.models import NumpyMLPModel

__all__ = ["NumpyMLPModel"]
