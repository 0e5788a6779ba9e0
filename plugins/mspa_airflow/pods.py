"""The GPU pods: the trainer task, and the composer's batch task (:class:`BatchGenerateOperator`).

The trainer task: a KubernetesPodOperator that runs ``mspa_tasks.align.train`` on GPUs,
or, when ``[align] launcher = "local"``, the same entry point as a local subprocess (chosen
when the task runs, so the DAG's graph is the same in every environment).

Built from ``[align.pod]`` of the environment's config. The pod runs the trainer image
(``docker/trainer.Dockerfile``) under ``accelerate launch`` with the DeepSpeed ZeRO-3 config
shipped in the image, as a non-root user with GPU, CPU and memory limits, on the GPU node
pool (node selector + toleration). Credentials come only from Kubernetes Secrets, exposed as
environment variables (``AWS_*`` for the ``s3://`` artifact store); no value passes through
Airflow. It is deferrable (the worker slot is freed while the pod runs), streams the
container log into the task log, and the pod is deleted when it finishes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

if TYPE_CHECKING:
    from mspa_tasks.config import PodConfig

ACCELERATE_CONFIG = "/opt/mspa/docker/accelerate_zero3.yaml"


def pod_settings(raw: dict[str, Any] | PodConfig) -> dict[str, Any]:
    """``[align.pod]`` over the defaults of :class:`~mspa_tasks.config.PodConfig`; unknown
    keys are an error (typos never pass)."""
    from mspa_tasks.config import PodConfig

    if isinstance(raw, PodConfig):
        return raw.model_dump()
    unknown = set(raw) - set(PodConfig.model_fields)
    if unknown:
        raise ValueError(f"unknown [align.pod] setting(s) {sorted(unknown)}; "
                         f"known: {sorted(PodConfig.model_fields)}")
    return PodConfig(**raw).model_dump()


class TrainerOperator(KubernetesPodOperator):
    """The ``train`` task in every environment: one graph whatever ``MSPA_ENV``. The launcher
    (``[align] launcher``) is read when the task runs: ``kubernetes`` runs the pod below,
    ``local`` runs the same entry point as a subprocess of the worker (the embedded default)."""

    def execute(self, context: Any) -> Any:
        from mspa_airflow.context import TaskContext

        launcher = TaskContext(context.get("params")).settings.align.launcher
        if launcher == "local":
            from mspa_tasks.align.retrain import launch_local

            config_uri = self.arguments[-1]
            self.log.info("[align] launcher = local: training in a subprocess (%s)", config_uri)
            launch_local(config_uri)
            return None
        return super().execute(context)


def _pod(pod: PodConfig | dict[str, Any] | None, section: Any) -> dict[str, Any]:
    """``pod`` checked over the defaults, or this environment's pod section when None."""
    if pod is None:
        from mspa_tasks.config import load_settings

        pod = section(load_settings())
    return pod_settings(pod)


def gpu_pod_kwargs(p: dict[str, Any], app: str) -> dict[str, Any]:
    """What every GPU pod of the pipeline shares (trainer, composer batch): resources on the
    GPU node pool, non-root, secrets as environment variables, shared memory, deferrable,
    logs streamed, deleted when done."""
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    limits = {"nvidia.com/gpu": str(p["gpus"]), "cpu": p["cpu"], "memory": p["memory"]}
    return dict(
        namespace=p["namespace"],
        image=p["image"],
        env_vars=[k8s.V1EnvVar(name="MSPA_ENV", value="prod"),
                  k8s.V1EnvVar(name="TOKENIZERS_PARALLELISM", value="false")],
        secrets=[Secret("env", None, name) for name in p["secrets"]],
        container_resources=k8s.V1ResourceRequirements(limits=limits, requests=dict(limits)),
        node_selector=dict(p["node_selector"]),
        tolerations=[k8s.V1Toleration(**t) for t in p["tolerations"]],
        service_account_name=p["service_account"] or None,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=p["run_as_user"], fs_group=p["run_as_user"]),
        container_security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False, run_as_non_root=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"])),
        # NCCL, DeepSpeed and vLLM need more shared memory than a container's 64 MB default.
        volumes=[k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(
            medium="Memory", size_limit=p["shm_size"]))],
        volume_mounts=[k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm")],
        labels={"app": app},
        startup_timeout_seconds=p["startup_timeout_seconds"],
        active_deadline_seconds=int(p["active_deadline_seconds"]),
        deferrable=True,
        get_logs=True,
        on_finish_action="delete_pod",
    )


def trainer_operator(task_id: str, config_uri: str, pod: PodConfig | dict[str, Any] | None = None,
                     **kwargs: Any) -> TrainerOperator:
    """The operator (not yet run); ``config_uri`` may be a Jinja template; ``pod`` defaults
    to this environment's ``[align.pod]``."""
    p = _pod(pod, lambda settings: settings.align.pod)
    return TrainerOperator(
        task_id=task_id,
        name="mspa-trainer",
        cmds=["accelerate", "launch", "--config_file", ACCELERATE_CONFIG,
              "--num_processes", str(p["gpus"]), "-m", "mspa_tasks.align.train"],
        arguments=["--config", config_uri],
        **gpu_pod_kwargs(p, "mspa-trainer"),
        **kwargs,
    )


class BatchGenerateOperator(KubernetesPodOperator):
    """``compose.batch_generate`` in every environment (one graph). Reads ``[compose]`` when
    it runs: ``generation = "shards"`` does nothing (each shard generates); ``"batch"``
    exports the day's misses as batch JSONL, then answers them in-process
    (``batch_launcher = "local"``) or runs vLLM's batch runner in the GPU pod below
    (``"kubernetes"``: ``python -m mspa_tasks.compose.batch_pod --ds <ds>``)."""

    def execute(self, context: Any) -> Any:
        from mspa_airflow.context import TaskContext
        from mspa_tasks.compose import batch
        from mspa_tasks.llm.engine import backend_for

        ctx = TaskContext(context.get("params"))
        cfg = ctx.settings.compose
        if cfg.generation != "batch":
            self.log.info("[compose] generation = %s: every shard generates its own texts",
                          cfg.generation)
            return None
        ds = context["ds"]
        run = ctx.day(ds)
        exported = batch.export_batch(run)
        if not exported["requests"]:
            self.log.info("nothing to compose on %s: every text is in the cache", ds)
            batch.run_locally(ds, ctx.store, batch.ResultsBackend({}, ""))
            return exported
        if cfg.batch_launcher == "local":
            from mspa_tasks.llm.engine import model_version

            serving = run.serving.compose
            backend = backend_for(serving, run.settings, model_version(serving, run.settings))
            batch.run_locally(ds, ctx.store, backend)
            return exported
        # Deferrable: the worker slot is free while the pod runs. The shards read the results
        # and fail with the reason if the pod wrote none.
        return super().execute(context)


def batch_operator(task_id: str, pod: PodConfig | dict[str, Any] | None = None,
                   **kwargs: Any) -> BatchGenerateOperator:
    """The composer's batch task; ``pod`` defaults to this environment's
    ``[compose] batch_pod``."""
    p = _pod(pod, lambda settings: settings.compose.batch_pod)
    return BatchGenerateOperator(
        task_id=task_id,
        name="mspa-compose-batch",
        cmds=["python", "-m", "mspa_tasks.compose.batch_pod"],
        arguments=["--ds", "{{ ds }}"],
        **gpu_pod_kwargs(p, "mspa-compose-batch"),
        **kwargs,
    )
