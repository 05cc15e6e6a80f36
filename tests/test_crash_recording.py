"""A job killed outright (``kill -9``) while it records its arms, models, comparison and
figures, then run again with the same command in the same folder, leaves the very record of a
job that was never stopped (``tests/crashes.py`` has the job and the points; training and
checkpoints are in ``test_crash_training.py``)."""

from __future__ import annotations

import pytest
from crashes import RECORDING, reference_record, resumes_to, seeded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(tmp_path_factory, empty_store):
    return reference_record(tmp_path_factory, empty_store, drawn="workers")


@pytest.mark.parametrize("place", RECORDING, ids=[f"{p}@{n}" for p, n in RECORDING])
def test_a_job_killed_while_it_records_resumes_to_the_record_of_one_never_stopped(
    reference, tmp_path, empty_store, place
):
    point = f"{place[0]}@{place[1]}"
    problems = resumes_to(reference[0], seeded(tmp_path, empty_store, point), point, "workers")
    assert not problems, "\n".join(problems)
