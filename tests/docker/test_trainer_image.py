"""The trainer image's configuration, checked with the libraries that will read it.

No Docker engine runs here: the image is not built. What can be checked is checked: the
accelerate and DeepSpeed configs load in accelerate and transformers as ZeRO-3, the paths
they name are the ones the Dockerfile copies and the pod runs, and the versions the image
installs are the project's pins."""

from __future__ import annotations

import json
import re

from tests.conftest import REPO

DOCKER = REPO / "docker"


def test_accelerate_config_is_deepspeed_zero3_with_the_shipped_json():
    from accelerate.commands.config.config_args import ClusterConfig
    from transformers.integrations.deepspeed import HfDeepSpeedConfig

    from mspa_airflow.pods import ACCELERATE_CONFIG

    cluster = ClusterConfig.from_yaml_file(str(DOCKER / "accelerate_zero3.yaml"))
    assert cluster.distributed_type.value == "DEEPSPEED"
    shipped = cluster.deepspeed_config["deepspeed_config_file"]
    assert shipped == "/opt/mspa/docker/ds_zero3.json"
    ds = json.loads((DOCKER / "ds_zero3.json").read_text())
    assert HfDeepSpeedConfig(ds).is_zero3()
    # Without this, a ZeRO-3 save writes shards no single process can load.
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    dockerfile = (DOCKER / "trainer.Dockerfile").read_text()
    assert "COPY docker/accelerate_zero3.yaml docker/ds_zero3.json ./docker/" in dockerfile
    assert "WORKDIR /opt/mspa" in dockerfile and ACCELERATE_CONFIG in dockerfile


def test_trainer_image_installs_the_pinned_versions_as_a_non_root_user():
    dockerfile = (DOCKER / "trainer.Dockerfile").read_text()
    assert re.search(r"^FROM nvidia/cuda:12\.\d+\.\d+-cudnn-devel-ubuntu\d+\.\d+$", dockerfile,
                     re.MULTILINE)
    assert "pip install torch==2.13.0" in dockerfile
    assert "-c constraints.txt" in dockerfile
    assert re.search(r"^USER 1000$", dockerfile, re.MULTILINE)
    pins = {line.split("==")[0].lower(): line.split("==")[1] for line in
            (REPO / "constraints.txt").read_text().splitlines() if "==" in line}
    wanted = [line.split("==")[0].strip().lower() for line in
              (DOCKER / "trainer-requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert {"trl", "deepspeed", "accelerate", "transformers"} <= set(wanted)
    assert all(name in pins for name in wanted if name != "torch"), \
        [n for n in wanted if n not in pins]
