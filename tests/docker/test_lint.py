"""The deployment files, checked by the tools that read them (no Docker engine runs here):
hadolint on every Dockerfile, and docker-compose's own parser on the stack."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCKER = REPO / "docker"
HADOLINT = Path(sys.executable).parent / "hadolint"
COMPOSE = shutil.which("docker-compose")
ENV = {"POSTGRES_PASSWORD": "pw-from-env-1", "MINIO_ROOT_USER": "mspa-minio",
       "MINIO_ROOT_PASSWORD": "pw-from-env-2", "AIRFLOW_JWT_SECRET": "jwt-from-env-3",
       "AIRFLOW_SECRET_KEY": "key-from-env-4", "AIRFLOW_FERNET_KEY": "fernet-from-env-5"}
SHARED = {"AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
          "AIRFLOW__API__SECRET_KEY": "AIRFLOW_SECRET_KEY",
          "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY"}


@pytest.mark.parametrize("dockerfile", sorted(DOCKER.glob("*.Dockerfile")), ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile):
    result = subprocess.run([str(HADOLINT), "--no-color", str(dockerfile)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_images_exist():
    assert {p.name for p in DOCKER.glob("*.Dockerfile")} >= {"airflow.Dockerfile",
                                                             "trainer.Dockerfile"}
    airflow = (DOCKER / "airflow.Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2-python3.11" in airflow  # the pinned Airflow
    assert "-c constraints.txt" in airflow and "USER 50000" in airflow


def _compose(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    assert COMPOSE, "Debian's docker-compose is needed: `make debian-tools`"
    clean = {k: v for k, v in os.environ.items() if k not in ENV}
    return subprocess.run([COMPOSE, "-f", str(DOCKER / "compose.yaml"), *args],
                          env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=120, cwd=DOCKER)


def test_compose_stack_validates_and_takes_credentials_only_from_the_environment():
    result = _compose("config", env=ENV)
    assert result.returncode == 0, result.stderr
    stack = yaml.safe_load(result.stdout)
    assert {"postgres", "minio", "minio-init", "etcd", "milvus", "airflow-init",
            "airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer"} <= set(stack["services"])
    scheduler = stack["services"]["airflow-scheduler"]["environment"]
    assert scheduler["MSPA_ENV"] == "prod"
    assert ENV["POSTGRES_PASSWORD"] in scheduler["AIRFLOW_CONN_MSPA_WAREHOUSE"]
    assert ENV["MINIO_ROOT_PASSWORD"] in scheduler["AIRFLOW_CONN_AWS_DEFAULT"]
    raw = (DOCKER / "compose.yaml").read_text()
    assert not any(v in raw for v in ENV.values())  # nothing secret in the file itself

    missing = _compose("config", "-q")
    assert missing.returncode != 0
    assert "set POSTGRES_PASSWORD in docker/.env" in missing.stderr


def test_every_airflow_container_shares_one_jwt_secret_and_fernet_key():
    """Tokens signed by the API server are verified by the scheduler and workers, and
    connections encrypted by one container are decrypted by another: one value each, for all
    of them, from the environment; compose refuses to start without any of them."""
    stack = yaml.safe_load(_compose("config", env=ENV).stdout)
    airflow = {n: s for n, s in stack["services"].items() if n.startswith("airflow-")}
    assert len(airflow) >= 5
    for setting, variable in SHARED.items():
        assert {s["environment"].get(setting) for s in airflow.values()} == {ENV[variable]}, \
            setting
        missing = _compose("config", "-q", env={k: v for k, v in ENV.items() if k != variable})
        assert missing.returncode != 0 and f"set {variable} in docker/.env" in missing.stderr


def test_ports_are_published_on_loopback_only():
    stack = yaml.safe_load(_compose("config", env=ENV).stdout)
    published = [(name, port) for name, svc in stack["services"].items()
                 for port in svc.get("ports", [])]
    assert published, "the UI port is published"
    for name, port in published:
        host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", (name, port)
