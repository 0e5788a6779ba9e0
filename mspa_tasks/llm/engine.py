"""The composer's backend as configured: in-process (:mod:`.backends`) or an
OpenAI-compatible server (:mod:`.openai_backend`)."""

from __future__ import annotations

from mspa_tasks.config import ComposeConfig, Settings
from mspa_tasks.llm.backends import Backend, load_backend, resolve_model_path
from mspa_tasks.llm.openai_backend import OpenAIBackend


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
