"""The trainer pod, rendered without a cluster (no Kubernetes API server runs here).

What we build is the pod spec: these tests assert it field by field, from the production
config, through the DAG as the scheduler parses it with ``MSPA_ENV=prod``."""

from __future__ import annotations

import pytest

from tests.conftest import REPO


class _TI:
    def xcom_pull(self, task_ids: str):
        assert task_ids == "prepare"
        return {"config_uri": "s3://mspa-artifacts/runs/recommender/r20261120-abc/run.json"}


@pytest.fixture
def prod_train_task(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MSPA_ENV", "prod")
    bag = DagBag(dag_folder=str(REPO / "dags" / "mspa_retrain.py"))
    assert bag.import_errors == {}
    return bag.dags["mspa_retrain"].get_task("train")


def test_production_trains_in_a_gpu_pod(prod_train_task):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    op = prod_train_task
    assert isinstance(op, KubernetesPodOperator)
    assert op.pool == "mspa_gpu" and op.deferrable and op.get_logs
    assert op.on_finish_action.value == "delete_pod"
    args = op.render_template(op.arguments, {"ti": _TI()})
    assert args == ["--config", "s3://mspa-artifacts/runs/recommender/r20261120-abc/run.json"]

    pod = op.build_pod_request_obj(dry_run=True)  # no API client: nothing to reach
    spec = pod.spec
    (container,) = spec.containers
    assert container.image == "mspa/trainer:0.1.0"
    assert container.command == ["accelerate", "launch", "--config_file",
                                 "/opt/mspa/docker/accelerate_zero3.yaml", "--num_processes", "8",
                                 "-m", "mspa_tasks.align.train"]
    assert container.resources.limits == {"nvidia.com/gpu": "8", "cpu": "32",
                                          "memory": "480Gi"}
    assert container.resources.requests == container.resources.limits
    assert spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert [(t.key, t.operator, t.effect) for t in spec.tolerations] == \
        [("nvidia.com/gpu", "Exists", "NoSchedule")]
    # Secrets only by reference: the whole Secret as environment, no value in the spec.
    assert [e.secret_ref.name for e in container.env_from] == ["mspa-artifacts-s3"]
    env = {e.name: e.value for e in container.env}
    assert env == {"MSPA_ENV": "prod", "TOKENIZERS_PARALLELISM": "false"}  # no credential
    assert spec.security_context.run_as_non_root and spec.security_context.run_as_user == 1000
    assert container.security_context.allow_privilege_escalation is False
    assert container.security_context.capabilities.drop == ["ALL"]
    assert spec.service_account_name == "mspa-trainer"
    assert spec.active_deadline_seconds == 12 * 3600  # a stuck pod ends even after deferral
    assert pod.metadata.namespace == "mspa-training"
    shm = {v.name: v for v in spec.volumes}["dshm"]
    assert shm.empty_dir.medium == "Memory"
    assert {m.mount_path for m in container.volume_mounts} >= {"/dev/shm"}


def _graph(dag) -> dict[str, tuple[str, list[str]]]:
    return {t.task_id: (type(t).__name__, sorted(t.downstream_task_ids)) for t in dag.tasks}


def test_the_retrain_graph_is_the_same_in_every_environment(monkeypatch, prod_train_task):
    """The launcher is chosen when ``train`` runs, not when the file is parsed (issue 15):
    the graph parsed with MSPA_ENV=prod and with the embedded default is the same."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv("MSPA_ENV")
    local = DagBag(dag_folder=str(REPO / "dags" / "mspa_retrain.py")).dags["mspa_retrain"]
    assert _graph(local) == _graph(prod_train_task.dag) == {
        "prepare": ("_PythonDecoratedOperator", ["register", "train"]),
        "train": ("TrainerOperator", ["register"]),
        "register": ("_PythonDecoratedOperator", [])}
    assert local.get_task("train").pool == "mspa_gpu"


def test_the_embedded_default_trains_in_a_local_subprocess(monkeypatch):
    """``launcher = local``: ``train`` runs the entry point in a subprocess and never asks
    Kubernetes for anything (the pod path would need an API server)."""
    from airflow.dag_processing.dagbag import DagBag

    from mspa_airflow import pods

    calls = []
    monkeypatch.setattr("mspa_tasks.align.retrain.launch_local", calls.append)
    monkeypatch.setattr(pods.KubernetesPodOperator, "execute",
                        lambda self, context: pytest.fail("asked Kubernetes"))
    bag = DagBag(dag_folder=str(REPO / "dags" / "mspa_retrain.py"))
    train = bag.dags["mspa_retrain"].get_task("train")
    train.render_template_fields({"ti": _TI()})
    assert train.execute({}) is None
    assert calls == ["s3://mspa-artifacts/runs/recommender/r20261120-abc/run.json"]


def test_unknown_pod_settings_are_refused():
    from mspa_airflow.pods import pod_settings

    with pytest.raises(ValueError, match=r"unknown \[align.pod\] setting\(s\) \['gpu'\]"):
        pod_settings({"gpu": 8})


def test_the_composer_batch_job_runs_vllm_in_a_gpu_pod(monkeypatch):
    """[compose] generation = "batch" with batch_launcher = "kubernetes": the day's batch
    JSONL through vLLM's batch runner in a GPU pod (the pod spec, rendered; no cluster)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    monkeypatch.setenv("MSPA_ENV", "prod")
    bag = DagBag(dag_folder=str(REPO / "dags" / "mspa_daily.py"))
    assert bag.import_errors == {}
    op = bag.dags["mspa_daily"].get_task("compose.batch_generate")
    assert isinstance(op, KubernetesPodOperator) and op.pool == "mspa_gpu" and op.deferrable
    assert op.render_template(op.arguments, {"ds": "2026-11-20"}) == ["--ds", "2026-11-20"]
    pod = op.build_pod_request_obj(dry_run=True)
    (container,) = pod.spec.containers
    assert container.image == "mspa/trainer:0.1.0"  # the image that pins vLLM
    assert container.command == ["python", "-m", "mspa_tasks.compose.batch_pod"]
    assert container.resources.limits == {"nvidia.com/gpu": "1", "cpu": "8", "memory": "64Gi"}
    assert pod.spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert [e.secret_ref.name for e in container.env_from] == ["mspa-artifacts-s3"]
    assert {e.name: e.value for e in container.env} == {"MSPA_ENV": "prod",
                                                        "TOKENIZERS_PARALLELISM": "false"}
    assert pod.spec.security_context.run_as_non_root
    assert pod.spec.active_deadline_seconds == 6 * 3600
    assert pod.metadata.namespace == "mspa-training"


def test_the_batch_task_is_a_no_op_when_shards_generate(monkeypatch):
    """The embedded default (generation = "shards"): the task returns without exporting
    anything or asking Kubernetes."""
    from airflow.dag_processing.dagbag import DagBag

    from mspa_airflow import pods

    monkeypatch.setattr(pods.KubernetesPodOperator, "execute",
                        lambda self, context: pytest.fail("asked Kubernetes"))
    monkeypatch.setattr("mspa_tasks.compose.batch.export_batch",
                        lambda *a, **k: pytest.fail("exported a batch"))
    op = DagBag(dag_folder=str(REPO / "dags" / "mspa_daily.py")).dags["mspa_daily"] \
        .get_task("compose.batch_generate")
    assert op.execute({"ds": "2026-11-20", "params": {}}) is None


def test_the_batch_pod_runs_vllms_batch_runner_with_prefix_caching():
    import doctest

    from mspa_tasks.compose import batch_pod

    assert doctest.testmod(batch_pod).failed == 0
