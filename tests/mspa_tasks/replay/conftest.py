"""The replay reads the same published day as the alignment stage: reuse its fixtures."""

from tests.mspa_tasks.align.conftest import day, encoder  # noqa: F401 (pytest fixtures)
