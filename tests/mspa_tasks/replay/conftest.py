"""The replay reads what the alignment stage reads: reuse its fixtures, with the day before
published too (a forward replay of DS scores with D0's artifacts)."""

import pytest

from tests.mspa_tasks.align.conftest import days  # noqa: F401 (pytest fixtures)


@pytest.fixture
def day(days):  # noqa: F811
    return days
