"""
### mspa_vectors_rollback — point `mspa_authors` back at an earlier published version

Triggered by hand (*Trigger DAG w/ config*). With `to_collection` empty the alias goes back to
the newest other published version; otherwise to the named one (see the `vectors.publish_alias`
log of a run, or `mspa vectors list`). The version rolled away from is marked `rolled_back`
(its reason recorded in Milvus) and dropped by retention at the next nightly publish; the
next `mspa_daily` run publishes a fresh version as usual.

Same CLI: `mspa vectors rollback [--to COLLECTION] [--reason TEXT]`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, task

from mspa_airflow.alerts import on_failure
from mspa_airflow.context import TaskContext

MILVUS_POOL = "mspa_milvus"


@dag(
    dag_id="mspa_vectors_rollback",
    schedule=None,
    start_date=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["mspa", "vectors", "ops"],
    # No automatic retry: a repeated rollback would move the alias back one more version.
    default_args={"owner": "mspa-data-eng", "retries": 0, "on_failure_callback": on_failure},
    params={
        "to_collection": Param("", type="string",
                               description="Collection to serve; empty = previous version."),
        "reason": Param("rollback from the Airflow UI", type="string", minLength=3,
                        description="Why; recorded on the version rolled away from."),
    },
)
def mspa_vectors_rollback():
    @task(pool=MILVUS_POOL, doc_md="Move the alias back; mark the current version rolled_back.")
    def rollback(params=None) -> dict:
        from mspa_tasks.vectors import lifecycle

        ctx = TaskContext(params)  # not a day's run: the alias moves whatever day it serves
        return lifecycle.rollback(ctx.milvus, ctx.settings, to=params.get("to_collection") or None,
                                  reason=params["reason"])

    rollback()


mspa_vectors_rollback()
