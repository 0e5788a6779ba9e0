"""The composer against any OpenAI-compatible server (vLLM, SGLang, llama.cpp's server).

The prompt is rendered here, with the model's own chat template and the section's prefill,
exactly as :class:`~mspa_tasks.llm.hf.TextBackend` renders it, and sent to the
server's ``/completions`` endpoint: the server generates, nothing else changes. So the
texts, their validation and their cache keys (model version, prompt version, exact input)
are today's, and a text composed on CPU is reused by a GPU server run and the reverse.

* **Concurrent**: ``openai_concurrency`` requests in flight (the server batches them;
  vLLM's continuous batching wants many).
* **Retries**: a refused or dropped connection, a timeout (``openai_timeout_s``), a 429 or a
  5xx is retried with exponential backoff and jitter (``openai_backoff_s`` · 2^attempt), up
  to ``openai_max_retries`` times; a 4xx other than 429 is a bug in the request and fails at
  once. Each answer lands in its request's slot, so a retry can never duplicate or reorder a
  text (a server killed mid-batch: the requests in flight are re-sent, the others kept).
* **Greedy** (temperature 0) by default; a composer retry passes a seed and samples
  (temperature 0.8, top-p 0.95), as the local backend does.
* One line per answer (``stop: ["\\n"]``). The extractive vocabulary of very small models
  needs logits access a server does not give: ``compose.extractive`` must be false here.

The API key, if the server wants one, is read from the environment variable named by
``openai_api_key_env`` (never from the config file).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mspa_tasks.llm.requests import Generation, Request, first_line
from mspa_tasks.progress import Progress

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ServerUnavailable(RuntimeError):
    """The server did not answer a request after every retry."""


class OpenAIBackend:
    """An OpenAI-compatible ``/completions`` server as a composer backend (module doc)."""

    modality = "text"

    def __init__(self, tokenizer_path: str, base_url: str, served_model: str,
                 model_version: str, max_new_tokens: int = 16, concurrency: int = 8,
                 timeout_s: float = 60.0, max_retries: int = 4, backoff_s: float = 0.5,
                 api_key_env: str = "", one_line: bool = True,
                 label: str = "generate") -> None:
        import httpx
        from transformers import AutoTokenizer

        if concurrency < 1 or max_retries < 0 or max_new_tokens < 1:
            raise ValueError(f"concurrency={concurrency}, max_retries={max_retries} and "
                             f"max_new_tokens={max_new_tokens} are out of range")
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        self.url = base_url.rstrip("/") + "/completions"
        self.served_model, self.model_version = served_model, model_version
        self.max_new_tokens, self.concurrency = max_new_tokens, concurrency
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.one_line, self.label = one_line, label
        headers = {}
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers,
                                   limits=httpx.Limits(max_connections=concurrency))
        self.retried = 0  # requests re-sent, for the log and the tests
        self._lock = threading.Lock()

    def prompt(self, request: Request) -> str:
        """The exact text TextBackend feeds its model: chat template, then the prefill."""
        return self.tokenizer.apply_chat_template(
            request.messages, tokenize=False, add_generation_prompt=True) + request.prefill

    def _body(self, request: Request, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.served_model, "prompt": self.prompt(request),
                                "max_tokens": self.max_new_tokens, "temperature": 0.0}
        if seed is not None:
            body.update(temperature=0.8, top_p=0.95, seed=seed)
        if self.one_line:
            body["stop"] = ["\n"]
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.post(self.url, json=body)
                if response.status_code not in RETRY_STATUS:
                    response.raise_for_status()
                    return response.json()
                why = f"HTTP {response.status_code}"
            except httpx.HTTPStatusError:
                raise  # a 4xx: the request is wrong, re-sending it changes nothing
            except (httpx.TransportError, ValueError) as exc:  # refused, reset, timeout, bad JSON
                why = f"{type(exc).__name__}: {exc}"
            if attempt == self.max_retries:
                raise ServerUnavailable(f"{self.url} did not answer after {attempt + 1} "
                                        f"attempts: {why}")
            delay = self.backoff_s * 2 ** attempt * (1 + random.random() / 2)
            with self._lock:
                self.retried += 1
            log.warning("%s: %s; retry %d/%d in %.1f s", self.url, why, attempt + 1,
                        self.max_retries, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _one(self, request: Request, seed: int | None) -> Generation:
        out = self._post(self._body(request, seed))
        text = out["choices"][0].get("text") or ""
        usage = out.get("usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or 0)
        tokens_out = int(usage.get("completion_tokens") or 0)
        return Generation(first_line(text) if self.one_line else text, tokens_in, tokens_out)

    def generate(self, requests: list[Request], seed: int | None = None) -> list[Generation]:
        """One answer per request, in the requests' order."""
        if not requests:
            return []
        results: list[Generation | None] = [None] * len(requests)
        progress = Progress(self.label, len(requests), log, unit="sequences")
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="mspa-openai") as pool:
            futures = {pool.submit(self._one, r, seed): i for i, r in enumerate(requests)}
            for future, i in futures.items():
                results[i] = future.result()
                progress.update(1)
        return [r for r in results if r is not None]

    def close(self) -> None:
        self.client.close()
