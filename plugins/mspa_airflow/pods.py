"""The trainer task: a KubernetesPodOperator that runs ``mspa_tasks.align.train`` on GPUs,
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
        from mspa_tasks.config import load_settings

        launcher = load_settings().align.launcher
        if launcher == "local":
            from mspa_tasks.align.retrain import launch_local

            config_uri = self.arguments[-1]
            self.log.info("[align] launcher = local: training in a subprocess (%s)", config_uri)
            launch_local(config_uri)
            return None
        return super().execute(context)


def trainer_operator(task_id: str, config_uri: str, pod: PodConfig | dict[str, Any] | None = None,
                     **kwargs: Any) -> TrainerOperator:
    """The operator (not yet run); ``config_uri`` may be a Jinja template; ``pod`` defaults
    to this environment's ``[align.pod]``."""
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    if pod is None:
        from mspa_tasks.config import load_settings

        pod = load_settings().align.pod
    p = pod_settings(pod)
    limits = {"nvidia.com/gpu": str(p["gpus"]), "cpu": p["cpu"], "memory": p["memory"]}
    return TrainerOperator(
        task_id=task_id,
        name="mspa-trainer",
        namespace=p["namespace"],
        image=p["image"],
        cmds=["accelerate", "launch", "--config_file", ACCELERATE_CONFIG,
              "--num_processes", str(p["gpus"]), "-m", "mspa_tasks.align.train"],
        arguments=["--config", config_uri],
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
        # NCCL and DeepSpeed need more shared memory than a container's 64 MB default.
        volumes=[k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(
            medium="Memory", size_limit=p["shm_size"]))],
        volume_mounts=[k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm")],
        labels={"app": "mspa-trainer"},
        startup_timeout_seconds=p["startup_timeout_seconds"],
        active_deadline_seconds=int(p["active_deadline_seconds"]),
        deferrable=True,
        get_logs=True,
        on_finish_action="delete_pod",
        **kwargs,
    )
