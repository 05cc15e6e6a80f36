"""``python -m pipeline.report``: the report, on the runs MLflow holds.

An entry point, like ``pipeline/__main__.py``: it hands the report (pure pandas and
matplotlib) the MLflow queries of the tracking layer, so neither package imports the other
both ways (``tests/test_layers.py``).
"""

import sys

from pipeline.report.report_cli import main
from pipeline.tracking import query

sys.exit(main(source=query))
