"""The trainer pod: the KubernetesPodOperator that runs ``mspa_tasks.align.train`` on GPUs.

Built from ``[align.pod]`` of the environment's config. The pod runs the trainer image
(``docker/trainer.Dockerfile``) under ``accelerate launch`` with the DeepSpeed ZeRO-3 config
shipped in the image, as a non-root user with GPU, CPU and memory limits, on the GPU node
pool (node selector + toleration). Credentials come only from Kubernetes Secrets, exposed as
environment variables (``AWS_*`` for the ``s3://`` artifact store); no value passes through
Airflow. It is deferrable (the worker slot is freed while the pod runs), streams the
container log into the task log, and the pod is deleted when it finishes.
"""

from __future__ import annotations

from typing import Any

ACCELERATE_CONFIG = "/opt/mspa/docker/accelerate_zero3.yaml"
POD_DEFAULTS: dict[str, Any] = {
    "image": "mspa/trainer:0.1.0", "namespace": "default", "service_account": "",
    "gpus": 1, "cpu": "8", "memory": "64Gi", "node_selector": {}, "tolerations": [],
    "secrets": [], "startup_timeout_seconds": 1800,
    # Kubernetes kills a pod that outlives this, whatever Airflow's deferral state (the KPO's
    # execution_timeout is not enforced after deferral: an open lifecycle bug).
    "active_deadline_seconds": 12 * 3600, "shm_size": "16Gi", "run_as_user": 1000,
}


def trainer_launch() -> tuple[str, dict[str, Any]]:
    """``(launcher, pod settings)`` of this environment (``MSPA_ENV``): read when the DAG
    file is parsed, so the trainer task is a pod in production and a subprocess locally."""
    from mspa_tasks.config import load_settings

    align = load_settings().align
    return align.launcher, pod_settings(align.pod) if align.launcher == "kubernetes" else {}


def pod_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """``[align.pod]`` over the defaults; unknown keys are an error (typos never pass)."""
    unknown = set(raw) - set(POD_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown [align.pod] setting(s) {sorted(unknown)}; "
                         f"known: {sorted(POD_DEFAULTS)}")
    return {**POD_DEFAULTS, **raw}


def trainer_pod_operator(task_id: str, pod: dict[str, Any], config_uri: str, **kwargs: Any):
    """The operator (not yet run); ``config_uri`` may be a Jinja template."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    p = pod_settings(pod)
    limits = {"nvidia.com/gpu": str(p["gpus"]), "cpu": p["cpu"], "memory": p["memory"]}
    return KubernetesPodOperator(
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
