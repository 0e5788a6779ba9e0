"""
### mspa_daily — keep the MSPA author recommender fresh, one day (`ds`) at a time

**Ingest** (task group `ingest`), for the 30-day tipping window that ends on `ds`:

| task | what it does | on failure |
| --- | --- | --- |
| `prepare_tables` | checks that the source tables exist (it never creates one); creates the pipeline's own tables if missing | a missing source table **stops the run, no retry**, naming it |
| `extract_window` | classifies the window's tip events and every author row with a rejection reason; fills `quarantine_tip_events` / `quarantine_authors`; applies the paper's filters (users with < `min_authors` distinct authors or < `min_tip_days` tipping days; authors with no text or image) into `dropped_users`; stages sessions, kept authors, the 7:2:1 user split and dropped users as Parquet under `sessions/ds=<ds>/` (unpublished) | retried |
| `quality_gate` | volume vs the previous day, null keys, duplicates, quarantine share, freshness; what the filters kept (users, authors, share of candidate events) against floors and the previous published day; writes `dq_results` | **stops the run, no retry**: the log names the check, its value and its bound; nothing downstream is refreshed |
| `publish_sessions` | commits the staged partition by writing its manifest (the one atomic step) | retried; the previous partition keeps serving until the new manifest lands |

**Compose** (task group `compose`, MSPA's Multimodal Preference Composer):

| task | what it does |
| --- | --- |
| `plan_shards` | the user shards and author shards of the day (`n_shards` each, from config) |
| `batch_generate` (pool `mspa_gpu`) | with `[compose] generation = "batch"`: the day's cache misses (every shard, every section) as one OpenAI batch JSONL, answered by vLLM's batch runner in a GPU pod (prefix caching) or in-process (`batch_launcher = "local"`); the shards then read the answers. A no-op with `generation = "shards"` (the default) |
| `compose_shard` (mapped, pool `mspa_compose`) | one shard: fenced inputs from the published sessions and author content; texts whose cache key (model, prompt version, exact input) matches yesterday's or a rerun's are reused; the rest are generated in batches, validated, retried, and failures stored with their reason |
| `publish_texts` | merges shards; publishes `preference_texts/ds=<ds>/` and `author_texts/ds=<ds>/` (Parquet + manifest with ok/failed/reused/regenerated counts) and the warehouse tables of the same names; writes a 20-text sample report for a human to read |

**Encoder** (task group `encoder`, beside compose: it needs the day before's texts only):

| task | what it does | on failure |
| --- | --- | --- |
| `align` | fine-tunes the serving text encoder (contrastive, sentence-transformers) on pairs of **train users only**: their preference text of the day before and the feature texts of authors they tipped or clicked on `ds`; gates it on the forward replay of `ds` on validation users (UAUC click, HR@K with 95% intervals vs the champion) and registers it in `encoder_registry` (promoted or rejected, with the reason); chooses the fused score's weight on the same users; publishes `encoder_alignment/ds=<ds>` (the pairs, the gate's figures). Skipped, with the reason in the log, on the first day, with too few pairs or when `[vectors.align] enabled = false` | retried; a rejected encoder is not a failure: the champion keeps encoding |

**Vectors** (task group `vectors`, the nightly author-vector refresh in Milvus):

| task | what it does | on failure |
| --- | --- | --- |
| `encode` | the encoder registry's champion (the aligned encoder once one is promoted; `vectors.encoder` before) over the day's author feature texts (an author whose text failed is encoded from its profile, counted) and preference texts; reuses vectors of unchanged texts; publishes `author_vectors/ds=<ds>/` and `user_vectors/ds=<ds>/` | retried |
| `build_collection` (pool `mspa_milvus`) | a new collection `mspa_authors__<ds>__<encoder>__<build>`: schema, index from config, batched insert, load | retried; a half-built collection is never served and is dropped by retention |
| `validate_collection` (pool `mspa_milvus`) | the gate: row count = kept authors, same ids, stored = encoded vectors, ANN recall@K vs exact search, each spot-checked author finds itself first | **stops the run, no retry**; the log and `reports/vectors/ds=<ds>/gate.json` name each check; the alias keeps serving the previous version |
| `publish_alias` (pool `mspa_milvus`) | one `alter_alias` of `mspa_authors` onto the validated collection; keeps the last `keep_versions` published versions, drops the rest. A past day (backfill) never moves the alias back from a newer one | retried |

**Replay** (task group `replay`, the offline evaluation analysts read every morning):

| task | what it does |
| --- | --- |
| `offline` | the day's impressions and requests, exact and batched: AUC/UAUC (click, gift), HR@K curve, Recall/NDCG@K on test users, A2A alignment; MSPA vectors vs popularity and ALS baselines trained on the same window |
| `prepare_examples` | publishes `align_examples/ds=<ds>` (test users' prompts, last tip held out) unless already published: the replay's only write before its report, declared as an outlet |
| `u2a` (pool `mspa_compose`) | Acc@4/Acc@10 of the champion recommender model on test users (last tip held out), and the baselines' picks among the same candidates |
| `ann_parity` (pool `mspa_milvus`) | a sample of requests through the published alias: HR@K via Milvus vs exact, ANN recall@K |
| `publish_report` | `replay_metrics` rows for ds (replaced on rerun), `reports/replay/ds=<ds>/report.html` and `report.json`; the **MSPA reports** page of this UI lists them |

Roll back with the DAG `mspa_vectors_rollback` (Params) or `mspa vectors rollback`.

Every step replaces its own `ds` and nothing else: rerunning or backfilling a day is safe,
also with several days in flight (retention never drops another run's build). Failures a
retry cannot fix (a gate, an empty input, a missing source table, a bad config value) fail
the task at once, without retries.
Emits the Assets `mspa_sessions`, `mspa_preference_texts`, `mspa_author_texts`
(extra: `ds`, `manifest`), `mspa_author_vectors` (the Milvus alias; extra: `alias`,
`collection`, `ds`), `mspa_author_vector_data` / `mspa_user_vector_data` (the encoded
partitions) and `mspa_replay_report` (extra: `ds`, `report`). Every dataset Asset comes from
the catalog (`mspa_tasks/datasets.py`): outlets where a task publishes it, inlets where it
reads it.

**Params** (Trigger DAG w/ config): `window_days`, `min_authors`, `min_tip_days`.

Alerts: a task that fails after its retries, and (with `[alerts] deadline_hours`, 6 in prod)
a run not finished that long after it was queued, POST a JSON alert to the HTTP connection
`mspa_alerts` when `[alerts] enabled` (off by default: logged only). Runbook: `docs/runbook.md`.

Environment: `MSPA_ENV=local` (SQLite, `file://`, milvus-lite file) or `prod` (connections
`mspa_warehouse`, `aws_default`, `mspa_milvus`). Runbook and reasons: `sql/README.md`, `docs/`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, task, task_group

from mspa_airflow.alerts import daily_deadline, on_failure
from mspa_airflow.assets import catalog_assets
from mspa_airflow.context import PARAM_KNOBS, TaskContext
from mspa_airflow.failures import fail_fast
from mspa_airflow.params import setting_param
from mspa_airflow.pods import batch_operator
from mspa_airflow.schedules import scheduled

# Datasets of the catalog (mspa_tasks/datasets.py): outlets where published, inlets where read.
(SESSIONS, PREFERENCE_TEXTS, AUTHOR_TEXTS, AUTHOR_VECTOR_DATA, USER_VECTOR_DATA,
 ENCODER_ALIGNMENT, ALIGN_EXAMPLES) = catalog_assets(
    "sessions", "preference_texts", "author_texts", "author_vectors", "user_vectors",
    "encoder_alignment", "align_examples")
# What consumers search: the Milvus alias (not a catalog dataset; the collection behind it).
AUTHOR_VECTORS = Asset(name="mspa_author_vectors", uri="milvus://mspa_authors", group="mspa")
REPLAY_REPORT = Asset(name="mspa_replay_report", uri="mspa://reports/replay", group="mspa")
COMPOSE_POOL = "mspa_compose"  # created by `make airflow-init`; size it to the GPU workers
GPU_POOL = "mspa_gpu"  # GPU pods (the composer's batch job), one slot locally
# A milvus-lite file is one process's at a time: one slot on the embedded default.
MILVUS_POOL = "mspa_milvus"


@dag(
    dag_id="mspa_daily",
    # Data intervals: the run for day D starts at 02:00 UTC on D+1 with ds = D, once the
    # day's events have landed (the freshness check holds the run to that).
    **scheduled("0 2 * * *"),
    doc_md=__doc__,
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
        @task(doc_md="Check the source tables exist; create the pipeline's own tables if missing.")
        def prepare_tables(params=None):
            from mspa_tasks import ingest as lib

            with fail_fast():  # a missing source table stays missing on retry
                lib.prepare_tables(TaskContext(params).warehouse_url)

        @task(doc_md="Classify the window ending at ds; fill quarantine; filter; stage outputs.")
        def extract_window(ds=None, params=None) -> dict:
            from mspa_tasks import ingest as lib

            ctx = TaskContext(params)
            with fail_fast():
                return lib.extract_window(ds, ctx.warehouse_url,
                                          ctx.store, ctx.settings)

        @task(doc_md="Data-quality gate: fails the run, with reasons, on a breach.")
        def quality_gate(ds=None, params=None) -> list[dict]:
            from mspa_tasks import ingest as lib

            ctx = TaskContext(params)
            with fail_fast():  # a breach is not transient: do not retry
                results = lib.quality_gate(ds, ctx.warehouse_url,
                                           ctx.store, ctx.settings.quality)
            return [r.as_dict() for r in results]

        @task(outlets=[SESSIONS], doc_md="Commit the staged partition: write its manifest.")
        def publish_sessions(ds=None, params=None, outlet_events=None) -> dict:
            from mspa_tasks import ingest as lib

            ctx = TaskContext(params)
            published = lib.publish_sessions(ds, ctx.warehouse_url,
                                             ctx.store)
            outlet_events[SESSIONS].extra = {"ds": ds, "manifest": published.manifest_uri}
            return {"manifest": published.manifest_uri, "counts": published.manifest["counts"]}

        prepare_tables() >> extract_window() >> quality_gate() >> publish_sessions()

    @task_group(group_id="compose", tooltip="preference texts per user, feature texts per author")
    def compose():
        @task(doc_md="List the day's user and author shards (from config).")
        def plan_shards(params=None) -> list[dict]:
            from mspa_tasks.compose.shards import plan_shards as plan

            return plan(TaskContext(params).settings.compose)

        @task(pool=COMPOSE_POOL, map_index_template="{{ shard.kind }} {{ shard.shard }}",
              inlets=[SESSIONS],
              execution_timeout=dt.timedelta(hours=4),
              doc_md="Compose one shard: reuse cached texts, generate and validate the rest.")
        def compose_shard(shard: dict, ds=None, params=None) -> dict:
            from mspa_tasks.compose.shards import compose_shard as run_shard

            ctx = TaskContext(params)
            with fail_fast():  # an empty partition stays empty on retry
                return run_shard(ds, shard["kind"], shard["shard"], shard["of"],
                                 ctx.warehouse_url, ctx.store, ctx.settings)

        @task(inlets=[SESSIONS], outlets=[PREFERENCE_TEXTS, AUTHOR_TEXTS],
              doc_md="Merge shards; publish preference_texts and author_texts for ds.")
        def publish_texts(ds=None, params=None, outlet_events=None) -> dict:
            from mspa_tasks.compose.outputs import publish_texts as publish

            ctx = TaskContext(params)
            with fail_fast():
                result = publish(ds, ctx.warehouse_url, ctx.store,
                                 ctx.settings)
            for asset, key in ((PREFERENCE_TEXTS, "preference_texts"),
                               (AUTHOR_TEXTS, "author_texts")):
                outlet_events[asset].extra = {"ds": ds, "manifest": result[key]["manifest"]}
            return result

        # [compose] generation = "batch": the day's misses as one vLLM batch job (GPU pod, or
        # in-process with batch_launcher = "local"); a no-op with "shards" (the default).
        batch = batch_operator("batch_generate", pool=GPU_POOL, inlets=[SESSIONS],
                               execution_timeout=dt.timedelta(hours=6),
                               doc_md="With [compose] generation = batch: export the day's "
                                      "misses as OpenAI batch JSONL and answer them with "
                                      "vLLM's batch runner in a GPU pod; otherwise a no-op.")
        shards = plan_shards()
        batch >> compose_shard.expand(shard=shards) >> publish_texts()

    @task_group(group_id="encoder", tooltip="align the text encoder to what users tip; gate")
    def encoder():
        @task(inlets=[SESSIONS, PREFERENCE_TEXTS, AUTHOR_TEXTS, AUTHOR_VECTOR_DATA],
              outlets=[ENCODER_ALIGNMENT], execution_timeout=dt.timedelta(hours=2),
              doc_md="Align the encoder on train users' pairs; gate on validation users.")
        def align(ds=None, params=None, outlet_events=None) -> dict:
            from mspa_tasks.vectors.alignment import align_encoder

            ctx = TaskContext(params)
            with fail_fast():
                result = align_encoder(ds, ctx.warehouse_url, ctx.store, ctx.settings)
            if "manifest" in result:
                outlet_events[ENCODER_ALIGNMENT].extra = {"ds": ds,
                                                          "manifest": result["manifest"]}
            return result

        align()

    @task_group(group_id="vectors", tooltip="encode texts; new Milvus collection; gate; alias")
    def vectors():
        @task(inlets=[SESSIONS, PREFERENCE_TEXTS, AUTHOR_TEXTS],
              outlets=[AUTHOR_VECTOR_DATA, USER_VECTOR_DATA],
              doc_md="Encode author and preference texts; publish author/user vectors.")
        def encode(ds=None, params=None) -> dict:
            from mspa_tasks.vectors.encode import encode_day

            ctx = TaskContext(params)
            with fail_fast():
                result = encode_day(ds, ctx.store, ctx.settings,
                                    warehouse_url=ctx.warehouse_url)
            return {"authors": result.authors_manifest, "users": result.users_manifest,
                    "counts": result.counts}

        @task(pool=MILVUS_POOL, inlets=[AUTHOR_VECTOR_DATA],
              doc_md="Build a new versioned collection; the alias is untouched.")
        def build_collection(ds=None, params=None) -> str:
            from mspa_tasks.vectors import build as lib

            ctx = TaskContext(params)
            with fail_fast():
                return lib.build_collection(ds, ctx.milvus,
                                               ctx.store, ctx.settings).collection

        @task(pool=MILVUS_POOL, doc_md="The gate: counts, ids, stored vectors, recall@K, spot checks.")
        def validate_collection(collection: str, ds=None, params=None) -> list[dict]:
            from mspa_tasks.vectors import gate as lib

            ctx = TaskContext(params)
            with fail_fast():  # a failed gate is not transient
                checks = lib.validate_collection(ds, collection, ctx.milvus,
                                                    ctx.store, ctx.settings)
            return [c.as_dict() for c in checks]

        @task(pool=MILVUS_POOL, outlets=[AUTHOR_VECTORS],
              doc_md="Swap the alias onto the validated collection; apply retention.")
        def publish_alias(collection: str, ds=None, params=None, outlet_events=None) -> dict:
            from mspa_tasks.vectors import lifecycle as lib

            ctx = TaskContext(params)
            with fail_fast():
                result = lib.publish_collection(ds, collection, ctx.milvus,
                                                   ctx.settings)
            outlet_events[AUTHOR_VECTORS].extra = {k: result[k] for k in
                                                   ("alias", "collection", "ds")}
            return result

        collection = build_collection()
        encode() >> collection
        validate_collection(collection) >> publish_alias(collection)

    @task_group(group_id="replay", tooltip="offline replay vs baselines; report")
    def replay():
        @task(inlets=[SESSIONS, AUTHOR_VECTOR_DATA, USER_VECTOR_DATA],
              doc_md="AUC/UAUC, HR@K, Recall/NDCG, A2A: MSPA vs popularity and ALS.")
        def offline(ds=None, params=None) -> dict:
            from mspa_tasks.replay.offline import replay_offline

            ctx = TaskContext(params)
            part = replay_offline(ds, ctx.warehouse_url, ctx.store,
                                  ctx.settings)
            # the first day has nothing earlier to replay with: a note, no coverage
            return {"coverage": part.get("coverage"), "timing": part.get("timing"),
                    "note": part.get("note")}

        @task(inlets=[SESSIONS, AUTHOR_TEXTS, AUTHOR_VECTOR_DATA], outlets=[ALIGN_EXAMPLES],
              doc_md="Publish the day's recommendation examples (last tip held out) unless "
                     "published: what u2a reads.")
        def prepare_examples(ds=None, params=None) -> None:
            from mspa_tasks.align.examples import ensure_examples

            ctx = TaskContext(params)
            ensure_examples(ds, ctx.warehouse_url, ctx.store, ctx.settings)

        @task(pool=COMPOSE_POOL, execution_timeout=dt.timedelta(hours=2),
              inlets=[ALIGN_EXAMPLES],
              doc_md="Acc@m of the champion recommender on test users, and the baselines'.")
        def u2a(ds=None, params=None) -> dict:
            from mspa_tasks.replay.u2a import replay_u2a

            ctx = TaskContext(params)
            part = replay_u2a(ds, ctx.warehouse_url, ctx.store, ctx.settings)
            return {"champion": part.get("champion"), "metrics": part["metrics"]}

        @task(pool=MILVUS_POOL, doc_md="Sampled requests through the alias vs exact search.")
        def ann_parity(ds=None, params=None) -> dict:
            from mspa_tasks.replay.ann import replay_ann

            ctx = TaskContext(params)
            part = replay_ann(ds, ctx.warehouse_url, ctx.store, ctx.settings,
                              ctx.milvus)
            return {"metrics": part["metrics"]}

        @task(outlets=[REPLAY_REPORT], doc_md="Merge parts; replay_metrics; HTML and JSON report.")
        def publish_report(ds=None, params=None, outlet_events=None) -> dict:
            from mspa_tasks.replay.results import REPORT_HTML, report_prefix
            from mspa_tasks.replay.results import publish_report as publish

            ctx = TaskContext(params)
            store = ctx.store
            publish(ds, ctx.warehouse_url, store, ctx.settings)
            uri = store.uri(f"{report_prefix(ctx.settings, ds)}/{REPORT_HTML}")
            outlet_events[REPLAY_REPORT].extra = {"ds": ds, "report": uri}
            return {"report": uri}

        [offline(), prepare_examples() >> u2a(), ann_parity()] >> publish_report()

    sessions, aligned, vector_refresh = ingest(), encoder(), vectors()
    sessions >> [compose(), aligned] >> vector_refresh >> replay()


mspa_daily()
