"""Failures a retry cannot fix fail the task at once; the rest keep their retries."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mspa_airflow.failures import fail_fast
from mspa_tasks.config import ConfigError
from mspa_tasks.days import InvalidPartition
from mspa_tasks.publish import EmptyInput
from mspa_tasks.quality import CheckResult, DataQualityError
from mspa_tasks.vector_store import MilvusUnavailable, PublishRefused
from mspa_tasks.warehouse import MissingSourceTable

BREACH = DataQualityError("2026-11-20", [CheckResult("kept_users", 0, 10, None, False, "x")])


@pytest.mark.parametrize("error", [
    BREACH, EmptyInput("sessions/authors of ds=2026-11-20 has 0 rows"),
    MissingSourceTable("no source table live_comments"), ConfigError("setting x"),
    InvalidPartition("ds='x'"), PublishRefused("collection c does not exist"),
], ids=lambda e: type(e).__name__)
def test_permanent_errors_fail_the_task_without_retry(error):
    with pytest.raises(AirflowFailException) as caught, fail_fast():
        raise error
    assert str(caught.value).startswith(f"{type(error).__name__}: ")
    assert str(error) in str(caught.value) and caught.value.__cause__ is error


@pytest.mark.parametrize("error", [MilvusUnavailable("held"), ConnectionError("reset"),
                                   OSError("disk")], ids=lambda e: type(e).__name__)
def test_transient_errors_keep_their_retries(error):
    with pytest.raises(type(error)), fail_fast():
        raise error
