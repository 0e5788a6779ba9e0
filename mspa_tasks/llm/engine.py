"""The one factory of LLM backends: which backend a configuration names (in process:
:mod:`.hf`, :mod:`.keywords`; or an OpenAI-compatible server, :mod:`.openai_backend`),
the weights it resolves to and the version that names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mspa_tasks.config import ComposeConfig, Settings
from mspa_tasks.llm.hf import TextBackend, VisionBackend
from mspa_tasks.llm.keywords import KeywordBackend
from mspa_tasks.llm.openai_backend import OpenAIBackend
from mspa_tasks.llm.requests import Backend
from mspa_tasks.models import packaged_model


def backend_for(cfg: ComposeConfig, settings: Settings, version: str) -> Backend:
    """The composer's backend as configured (``compose.backend``)."""
    path = None if cfg.backend == "keywords" else resolve_model_path(cfg, settings)
    if cfg.backend == "openai":

        return OpenAIBackend(path, cfg.openai_base_url, cfg.openai_model or cfg.model,
                             version, max_new_tokens=cfg.max_new_tokens,
                             concurrency=cfg.openai_concurrency, timeout_s=cfg.openai_timeout_s,
                             max_retries=cfg.openai_max_retries, backoff_s=cfg.openai_backoff_s,
                             api_key_env=cfg.openai_api_key_env)
    return load_backend(cfg.backend, path, batch_size=cfg.batch_size,
                        max_new_tokens=cfg.max_new_tokens, model_version=version)


BACKENDS = ("text", "vision", "keywords", "openai")


def load_backend(kind: str, model_path: str | Path | None, **kwargs: Any) -> Backend:
    if kind == "text":
        return TextBackend(model_path, **kwargs)
    if kind == "vision":
        return VisionBackend(model_path, **kwargs)
    if kind == "keywords":
        return KeywordBackend()
    raise ValueError(f"compose backend {kind!r} is unknown; use one of {', '.join(BACKENDS)}")


def model_version(cfg: ComposeConfig, settings: Settings) -> str:
    """What names the weights: the content-keyed packaged folder, a folder name or a hub id
    (``keywords-v1`` for the model-free backend)."""
    if cfg.backend == "keywords":
        return KeywordBackend.model_version
    return Path(resolve_model_path(cfg, settings, prepare=False)).name \
        if cfg.model.startswith("packaged:") or Path(cfg.model).exists() else cfg.model


def resolve_model_path(cfg: ComposeConfig, settings: Settings, prepare: bool = True) -> str:
    """The composer model's folder (a packaged one converted on first use), or the hub id /
    folder as configured (production; never fetched in tests)."""

    path = packaged_model(cfg.model, settings.models_dir, "llm", prepare)
    return cfg.model if path is None else str(path)
