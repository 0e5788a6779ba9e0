"""
### mspa_daily — keep the MSPA author recommender fresh, one day (`ds`) at a time

Ingest the 30-day tipping window, compose preference and author texts, align the encoder,
refresh the author vectors in Milvus behind the alias `mspa_authors`, and replay the day
offline for the morning report. What each task does and what happens when it fails:
`dags/mspa_daily.md` (below, and in each task's doc).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, task, task_group

from mspa_airflow.alerts import daily_deadline, on_failure
from mspa_airflow.assets import catalog_assets
from mspa_airflow.context import PARAM_KNOBS, alias_extra, manifest_of, stage
from mspa_airflow.docs import DagDocs
from mspa_airflow.params import setting_param
from mspa_airflow.pods import batch_operator
from mspa_airflow.schedules import scheduled

# Datasets of the catalog (mspa_tasks/datasets.py): outlets where published, inlets where read.
(SESSIONS, PREFERENCE_TEXTS, AUTHOR_TEXTS, AUTHOR_VECTOR_DATA, USER_VECTOR_DATA,
 ENCODER_ALIGNMENT, ALIGN_EXAMPLES, FORWARD_DAY) = catalog_assets(
    "sessions", "preference_texts", "author_texts", "author_vectors", "user_vectors",
    "encoder_alignment", "align_examples", "forward_day")
# What consumers search: the Milvus alias (not a catalog dataset; the collection behind it).
AUTHOR_VECTORS = Asset(name="mspa_author_vectors", uri="milvus://mspa_authors", group="mspa")
REPLAY_REPORT = Asset(name="mspa_replay_report", uri="mspa://reports/replay", group="mspa")
COMPOSE_POOL = "mspa_compose"  # created by `make airflow-init`; size it to the GPU workers
GPU_POOL = "mspa_gpu"  # GPU pods (the composer's batch job), one slot locally
# A milvus-lite file is one process's at a time: one slot on the embedded default.
MILVUS_POOL = "mspa_milvus"
DOCS = DagDocs(__file__, __doc__)
doc = DOCS.task  # each task's doc: its section of mspa_daily.md


@dag(
    dag_id="mspa_daily",
    # Data intervals: the run for day D starts at 02:00 UTC on D+1 with ds = D, once the
    # day's events have landed (the freshness check holds the run to that).
    **scheduled("0 2 * * *"),
    doc_md=DOCS.dag,
    tags=["mspa", "daily", "ingest", "compose", "encoder", "vectors", "replay"],
    # A DeadlineAlert when [alerts] deadline_hours > 0 (prod: 6 h after queued). Off on the
    # embedded default: `airflow dags test` on 3.3.2 crashes on one (apache/airflow#73428).
    **daily_deadline(),
    default_args={
        "on_failure_callback": on_failure,
        "owner": "mspa-data-eng",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=2),
    },
    # Type, bounds, default and description from the [ingest] settings model.
    params={name: setting_param("ingest", name) for name in PARAM_KNOBS},
)
def mspa_daily():
    @task_group(group_id="ingest", tooltip="30-day window -> quarantine, quality gate, sessions")
    def ingest():
        @task(doc_md=doc("ingest.prepare_tables"))
        def prepare_tables(ds=None, params=None):
            return stage("ingest:prepare_tables", ds, params)

        @task(doc_md=doc("ingest.extract_window"))
        def extract_window(ds=None, params=None) -> dict:
            return stage("ingest:extract_window", ds, params)

        @task(doc_md=doc("ingest.quality_gate"))
        def quality_gate(ds=None, params=None) -> list[dict]:
            return stage("ingest:quality_gate", ds, params)

        @task(outlets=[SESSIONS], doc_md=doc("ingest.publish_sessions"))
        def publish_sessions(ds=None, params=None, outlet_events=None) -> dict:
            return stage("ingest:publish_sessions", ds, params, retry=True,
                         outlet_events=outlet_events, extras={SESSIONS: manifest_of(ds)})

        prepare_tables() >> extract_window() >> quality_gate() >> publish_sessions()

    @task_group(group_id="compose", tooltip="preference texts per user, feature texts per author")
    def compose():
        @task(doc_md=doc("compose.plan_shards"))
        def plan_shards(ds=None, params=None) -> list[dict]:
            return stage("compose.shards:plan_day", ds, params)

        @task(pool=COMPOSE_POOL, map_index_template="{{ shard.kind }} {{ shard.shard }}",
              inlets=[SESSIONS], execution_timeout=dt.timedelta(hours=4),
              doc_md=doc("compose.compose_shard"))
        def compose_shard(shard: dict, ds=None, params=None) -> dict:
            return stage("compose.shards:compose_shard", ds, params,
                         shard["kind"], shard["shard"], shard["of"])

        @task(inlets=[SESSIONS], outlets=[PREFERENCE_TEXTS, AUTHOR_TEXTS],
              doc_md=doc("compose.publish_texts"))
        def publish_texts(ds=None, params=None, outlet_events=None) -> dict:
            return stage("compose.outputs:publish_texts", ds, params, outlet_events=outlet_events,
                         extras={PREFERENCE_TEXTS: manifest_of(ds, "preference_texts"),
                                 AUTHOR_TEXTS: manifest_of(ds, "author_texts")})

        # [compose] generation = "batch": the day's misses as one vLLM batch job (GPU pod, or
        # in-process with batch_launcher = "local"); a no-op with "shards" (the default).
        batch = batch_operator("batch_generate", pool=GPU_POOL, inlets=[SESSIONS],
                               execution_timeout=dt.timedelta(hours=6),
                               doc_md=doc("compose.batch_generate"))
        batch >> compose_shard.expand(shard=plan_shards()) >> publish_texts()

    @task_group(group_id="encoder", tooltip="align the text encoder to what users tip; gate")
    def encoder():
        @task(inlets=[SESSIONS, AUTHOR_VECTOR_DATA, USER_VECTOR_DATA], outlets=[FORWARD_DAY],
              doc_md=doc("encoder.forward_day"))
        def forward_day(ds=None, params=None, outlet_events=None) -> dict:
            return stage("forward_day:publish_forward_day", ds, params,
                         outlet_events=outlet_events, extras={FORWARD_DAY: manifest_of(ds)})

        @task(inlets=[SESSIONS, PREFERENCE_TEXTS, AUTHOR_TEXTS, FORWARD_DAY],
              outlets=[ENCODER_ALIGNMENT], execution_timeout=dt.timedelta(hours=2),
              doc_md=doc("encoder.align"))
        def align(ds=None, params=None, outlet_events=None) -> dict:
            return stage("vectors.alignment:align_encoder", ds, params, outlet_events=outlet_events,
                         extras={ENCODER_ALIGNMENT: manifest_of(ds)})

        forward_day() >> align()

    @task_group(group_id="vectors", tooltip="encode texts; new Milvus collection; gate; alias")
    def vectors():
        @task(inlets=[SESSIONS, PREFERENCE_TEXTS, AUTHOR_TEXTS],
              outlets=[AUTHOR_VECTOR_DATA, USER_VECTOR_DATA],
              doc_md=doc("vectors.encode"))
        def encode(ds=None, params=None) -> dict:
            return stage("vectors.encode:encode_day", ds, params)

        @task(pool=MILVUS_POOL, inlets=[AUTHOR_VECTOR_DATA],
              doc_md=doc("vectors.build_collection"))
        def build_collection(ds=None, params=None) -> dict:
            return stage("vectors.build:build_collection", ds, params)

        @task(pool=MILVUS_POOL, doc_md=doc("vectors.validate_collection"))
        def validate_collection(built: dict, ds=None, params=None) -> list[dict]:
            return stage("vectors.gate:validate_collection", ds, params, built["collection"])

        @task(pool=MILVUS_POOL, outlets=[AUTHOR_VECTORS],
              doc_md=doc("vectors.publish_alias"))
        def publish_alias(built: dict, ds=None, params=None, outlet_events=None) -> dict:
            return stage("vectors.lifecycle:publish_collection", ds, params, built["collection"],
                         outlet_events=outlet_events, extras={AUTHOR_VECTORS: alias_extra})

        built = build_collection()
        encode() >> built
        validate_collection(built) >> publish_alias(built)

    @task_group(group_id="replay", tooltip="offline replay vs baselines; report")
    def replay():
        @task(inlets=[FORWARD_DAY, ENCODER_ALIGNMENT], doc_md=doc("replay.offline"))
        def offline(ds=None, params=None) -> dict:
            # the first day has nothing earlier to replay with: a note, no coverage
            return stage("replay.offline:replay_offline", ds, params, retry=True,
                         keys=("coverage", "timing", "note"))

        @task(inlets=[SESSIONS, AUTHOR_TEXTS, AUTHOR_VECTOR_DATA], outlets=[ALIGN_EXAMPLES],
              doc_md=doc("replay.prepare_examples"))
        def prepare_examples(ds=None, params=None) -> None:
            return stage("align.examples:ensure_examples", ds, params, retry=True)

        @task(pool=COMPOSE_POOL, execution_timeout=dt.timedelta(hours=2), inlets=[ALIGN_EXAMPLES, FORWARD_DAY],
              doc_md=doc("replay.u2a"))
        def u2a(ds=None, params=None) -> dict:
            return stage("replay.u2a:replay_u2a", ds, params, retry=True,
                         keys=("champion", "metrics"))

        @task(pool=MILVUS_POOL, inlets=[FORWARD_DAY], doc_md=doc("replay.ann_parity"))
        def ann_parity(ds=None, params=None) -> dict:
            return stage("replay.ann:replay_ann", ds, params, retry=True, keys=("metrics",))

        @task(outlets=[REPLAY_REPORT], doc_md=doc("replay.publish_report"))
        def publish_report(ds=None, params=None, outlet_events=None) -> dict:
            return stage("replay.results:publish_report", ds, params, retry=True,
                         outlet_events=outlet_events, extras={REPLAY_REPORT: dict})

        [offline(), prepare_examples() >> u2a(), ann_parity()] >> publish_report()

    sessions, aligned, vector_refresh = ingest(), encoder(), vectors()
    sessions >> [compose(), aligned] >> vector_refresh >> replay()


mspa_daily()
