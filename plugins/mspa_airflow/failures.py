"""Which failures a retry cannot fix: they fail the task at once, with the library's message.

A breached gate, an empty input, a missing source table, a bad config value or a ``ds`` that
is not a date will fail the same way on every retry; retrying only delays the alert and
fills the log. Everything else (a database or store hiccup, a held milvus-lite file) keeps
the task's retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def permanent_errors() -> tuple[type[BaseException], ...]:
    from mspa_tasks.config import ConfigError
    from mspa_tasks.days import InvalidPartition
    from mspa_tasks.publish import EmptyInput
    from mspa_tasks.quality import GateError
    from mspa_tasks.vector_store import PublishRefused
    from mspa_tasks.warehouse import MissingSourceTable

    return (GateError, EmptyInput, MissingSourceTable, ConfigError, InvalidPartition,
            PublishRefused)


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn a :func:`permanent_errors` failure into ``AirflowFailException`` (no retry)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except permanent_errors() as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
