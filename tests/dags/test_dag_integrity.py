"""Every DAG imports cleanly, is documented, tagged, retried, and has the expected tasks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY = {"torch", "transformers", "trl", "sentence_transformers", "pymilvus", "deepspeed",
         "pandas", "numpy", "pyarrow", "sqlalchemy", "mspa_tasks"}
EXPECTED_TASKS = {
    "mspa_daily": {"ingest.prepare_tables", "ingest.extract_window", "ingest.quality_gate",
                   "ingest.publish_sessions", "compose.plan_shards", "compose.compose_shard",
                   "compose.publish_texts", "compose.batch_generate", "encoder.forward_day",
                   "encoder.align", "vectors.encode", "vectors.build_collection",
                   "vectors.validate_collection", "vectors.publish_alias",
                   "replay.offline", "replay.prepare_examples", "replay.u2a", "replay.ann_parity", "replay.publish_report"},
    "mspa_vectors_rollback": {"rollback"},
    "mspa_retrain": {"prepare", "train", "register"},
}
# A rollback is not retried: repeating it would move the alias back one more version.
NOT_RETRIED = {("mspa_vectors_rollback", "rollback")}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED_TASKS)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_TASKS))
def test_dag_is_documented_tagged_and_retried(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags and "mspa" in dag.tags
    assert dag.doc_md and dag_id in dag.doc_md
    assert set(dag.task_ids) == EXPECTED_TASKS[dag_id]
    for task in dag.tasks:
        wanted = 0 if (dag_id, task.task_id) in NOT_RETRIED else 2
        assert task.retries >= wanted, f"{task.task_id} has retries={task.retries}"
        assert task.doc_md, f"{task.task_id} has no doc_md"
        assert task.on_failure_callback, f"{task.task_id} has no failure alert"


def test_every_task_of_the_daily_dag_has_its_own_section_in_the_docs_and_no_section_is_stale(
        dagbag):
    """mspa_daily's docs live in mspa_daily.md: one section per task, shown as that task's
    doc; a renamed or removed task must not leave its section behind."""
    from mspa_airflow.docs import DagDocs, MissingTaskDoc

    dag = dagbag.dags["mspa_daily"]
    docs = DagDocs(str(REPO / "dags" / "mspa_daily.py"), None)
    assert set(docs.task_ids) == set(dag.task_ids)
    for task in dag.tasks:
        assert task.doc_md == docs.task(task.task_id) and len(task.doc_md) > 40
    assert "#### `ingest.extract_window`" in dag.doc_md  # the DAG's doc holds every section
    with pytest.raises(MissingTaskDoc, match="no section #### `ingest.nope`"):
        docs.task("ingest.nope")


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_are_wiring_only(path: Path):
    """No heavy import at module top level: the scheduler parses these files constantly."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            assert name.split(".")[0] not in HEAVY, f"{path.name}: top-level import {name}"
    assert path.stem in {n.value for n in ast.walk(tree)
                         if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_daily_params_and_asset(dagbag):
    dag = dagbag.dags["mspa_daily"]
    assert {k: dag.params[k] for k in ("window_days", "min_authors", "min_tip_days")} == \
        {"window_days": 30, "min_authors": 3, "min_tip_days": 3}
    publish = dag.get_task("ingest.publish_sessions")
    assert [o.name for o in publish.outlets] == ["mspa_sessions"]
    texts = dag.get_task("compose.publish_texts")
    assert [o.name for o in texts.outlets] == ["mspa_preference_texts", "mspa_author_texts"]
    assert dag.get_task("compose.compose_shard").pool == "mspa_compose"
    assert "ingest.publish_sessions" in dag.get_task("compose.plan_shards").upstream_task_ids


def test_vector_tasks_hold_the_one_slot_milvus_pool(dagbag):
    daily = dagbag.dags["mspa_daily"]
    for task_id in ("vectors.build_collection", "vectors.validate_collection",
                    "vectors.publish_alias"):
        assert daily.get_task(task_id).pool == "mspa_milvus"
    assert dagbag.dags["mspa_vectors_rollback"].get_task("rollback").pool == "mspa_milvus"
    assert daily.get_task("vectors.encode").pool != "mspa_milvus"  # encoding needs no Milvus
    assert [o.name for o in daily.get_task("vectors.publish_alias").outlets] == \
        ["mspa_author_vectors"]
    assert "compose.publish_texts" in daily.get_task("vectors.encode").upstream_task_ids
    # the encoder is aligned beside compose (it reads the day before's texts), before encode
    assert daily.get_task("encoder.forward_day").upstream_task_ids == \
        {"ingest.publish_sessions"}
    assert daily.get_task("encoder.align").upstream_task_ids == {"encoder.forward_day"}
    assert "encoder.align" in daily.get_task("vectors.encode").upstream_task_ids
    assert {"vectors.validate_collection", "vectors.build_collection"} <= \
        daily.get_task("vectors.publish_alias").upstream_task_ids


def test_retrain_schedule_params_pool_and_asset(dagbag):
    dag = dagbag.dags["mspa_retrain"]
    assert dag.timetable.summary == "0 4 * * 0"  # weekly, Sundays 04:00 UTC
    assert set(dag.params) == {"ds", "recipe", "sft_max_steps", "max_steps", "learning_rate",
                               "beta", "num_generations", "max_train_users", "max_eval_users",
                               "tolerance"}
    assert all(dag.params[k] is None for k in dag.params if k != "ds")  # empty = config
    assert dag.get_task("train").pool == "mspa_gpu"
    assert dag.get_task("train").upstream_task_ids == {"prepare"}
    assert dag.get_task("register").upstream_task_ids == {"prepare", "train"}
    assert [o.name for o in dag.get_task("register").outlets] == ["mspa_recommender_model"]


def test_dataset_assets_come_from_the_catalog(dagbag):
    """Each catalog dataset is an outlet of the task the catalog names as its producer, and
    an inlet of the tasks that read it, under the catalog's Asset name."""
    from mspa_tasks.datasets import CATALOG

    for dataset in CATALOG.values():
        task = dagbag.dags[dataset.producer.dag].get_task(dataset.producer.task)
        assert dataset.asset_name in [o.name for o in task.outlets], dataset.name
    daily = dagbag.dags["mspa_daily"]
    inlets = {t.task_id: {i.name for i in t.inlets} for t in daily.tasks}
    assert inlets["compose.compose_shard"] == {"mspa_sessions"}
    assert inlets["vectors.encode"] == {"mspa_sessions", "mspa_preference_texts",
                                        "mspa_author_texts"}
    # the forward day is loaded once, by encoder.forward_day; the gate and the replay read it
    assert inlets["encoder.forward_day"] >= {"mspa_author_vector_data", "mspa_user_vector_data"}
    for reader in ("encoder.align", "replay.offline", "replay.ann_parity"):
        assert "mspa_forward_day" in inlets[reader], reader
    assert not inlets["replay.offline"] & {"mspa_author_vector_data", "mspa_user_vector_data"}
