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


def _pins(path) -> dict[str, str]:
    return {line.split("==")[0].strip().lower(): line.split("==")[1].strip()
            for line in path.read_text().splitlines() if "==" in line and line[0] != "#"}


def test_trainer_image_installs_the_pinned_versions_as_a_non_root_user():
    from packaging.requirements import Requirement

    dockerfile = (DOCKER / "trainer.Dockerfile").read_text()
    assert re.search(r"^FROM nvidia/cuda:12\.\d+\.\d+-cudnn-devel-ubuntu\d+\.\d+$", dockerfile,
                     re.MULTILINE)
    assert "pip install torch==2.13.0" in dockerfile
    assert "-c trainer-constraints.txt" in dockerfile
    assert re.search(r"^USER 1000$", dockerfile, re.MULTILINE)
    pins = _pins(DOCKER / "trainer-constraints.txt")
    wanted = [Requirement(line).name.lower() for line in
              (DOCKER / "trainer-requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert {"trl", "deepspeed", "accelerate", "transformers", "vllm"} <= set(wanted)
    assert all(name in pins for name in wanted), [n for n in wanted if n not in pins]
    # The trainer runs the TRL the project tests, torch 2.13.0, and the vLLM TRL declares.
    project = _pins(REPO / "constraints.txt")
    assert pins["trl"] == project["trl"] and pins["torch"] == "2.13.0"
    import importlib.metadata as md

    declared = next(Requirement(r) for r in md.requires("trl")
                    if Requirement(r).name == "vllm")
    assert declared.specifier.contains(pins["vllm"]), (pins["vllm"], str(declared.specifier))
    vllm_needs = {"transformers": "<5.18.0,>=5.10.4"}  # vLLM 0.31.0's own requirement
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(vllm_needs["transformers"]).contains(pins["transformers"])


def _closure(names: set[str]) -> set[str]:
    """``names`` and everything they require (no extras), as installed here."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    seen: set[str] = set()
    todo = [norm(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(norm(req.name))
    return seen


def test_the_trainer_image_has_every_package_its_entry_point_imports():
    """What `python -m mspa_tasks.align.train` imports (at import time and in its run: torch,
    transformers, trl, datasets) must come from trainer-requirements.txt or their
    dependencies, or the pod fails at its first line (pydantic-settings was missing once)."""
    import subprocess
    import sys

    code = ("import importlib, importlib.metadata as md, sys\n"
            "for m in ['mspa_tasks.align.train', 'mspa_tasks.llm.ranking',"
            " 'mspa_tasks.align.examples', 'mspa_tasks.model_store', 'mspa_tasks.align.rewards',"
            " 'mspa_tasks.llm.answers',"
            " 'mspa_tasks.llm.hf', 'mspa_tasks.llm.engine', 'mspa_tasks.scoring.uncertainty',"
            " 'mspa_tasks.artifacts', 'torch', 'transformers', 'trl', 'datasets']:\n"
            "    importlib.import_module(m)\n"
            "pd = md.packages_distributions()\n"
            "print('\\n'.join(sorted({d for n in list(sys.modules) for d in"
            " pd.get(n.split('.')[0], [])})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.split()
    wanted = {line.split("==")[0].strip() for line in
              (DOCKER / "trainer-requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    have = _closure(wanted)
    # Imported only because they are installed here (pyarrow's optional cloudpickle, pandas'
    # optional pytz, anyio's optional sniffio): their importers work without them.
    optional = {"cloudpickle", "pytz", "sniffio", "mspa-pipeline"}
    missing = sorted(d for d in out if re.sub(r"[-_.]+", "-", d).lower() not in have
                     and d not in optional)
    assert not missing, f"the trainer image lacks {missing}: add them to trainer-requirements.txt"
