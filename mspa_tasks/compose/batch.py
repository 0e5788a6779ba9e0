"""The composer's batch path (``[compose] generation = "batch"``): a day's generation as one
offline job on GPU nodes instead of per-shard generation.

1. ``compose.batch_generate`` exports every cache miss of the day — every user and author
   shard, every section — as one line of OpenAI batch JSONL (:func:`export_batch`) under
   ``_staging/compose_batch/ds=<ds>/requests.jsonl``: ``/v1/chat/completions`` with the
   section's messages and its prefill as the assistant's message to continue
   (``continue_final_message``), greedy, one line (``stop: ["\\n"]``). The ``custom_id`` is a
   hash of the messages and prefill, so an answer can only land on its own request.
2. vLLM's batch runner (``vllm.entrypoints.openai.run_batch``, prefix caching on: the four
   sections of an input share everything up to the question) answers it in a GPU pod
   (:mod:`.batch_pod`, ``batch_launcher = "kubernetes"``), or the in-process backend does
   (:func:`run_locally`, ``"local"``), writing the same result format to ``results.jsonl``.
3. Every ``compose_shard`` reads the answers by ``custom_id`` (:func:`results_backend`) and
   validates, assembles, caches and stages them exactly as the shards path does. An answer
   the batch did not give (an error line, a missing line) is an empty section: stored as
   ``failed`` with the reason, and counted in the log. There are no sampled retries in a
   batch (a retry pass would be a second batch job; not built).

The export records the model version; results written for another model are refused.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.compose.batch_io import (  # re-exported: the batch's one API
    ResultsBackend,
    batch_prefix,
    read_results,
    request_id,
    results_backend,
)
from mspa_tasks.compose.shards import plan_shards, shard_inputs
from mspa_tasks.llm.requests import Backend, Generation, Request
from mspa_tasks.run import DayRun

__all__ = ["ResultsBackend", "batch_prefix", "export_batch", "read_results", "request_id",
           "results_backend", "run_locally"]

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"


def batch_line(request: Request, model: str, max_tokens: int) -> dict[str, Any]:
    """One OpenAI batch line for ``request`` (module doc, step 1)."""
    return {"custom_id": request_id(request), "method": "POST", "url": ENDPOINT,
            "body": {"model": model,
                     "messages": [*request.messages,
                                  {"role": "assistant", "content": request.prefill}],
                     "max_tokens": max_tokens, "temperature": 0.0, "stop": ["\n"],
                     "add_generation_prompt": False, "continue_final_message": True}}


def request_of(line: dict[str, Any]) -> Request:
    """The composer's request back from a batch line (the local runner's input)."""
    *messages, prefill = line["body"]["messages"]
    return Request(messages, prefill=prefill["content"])


def export_batch(run: DayRun) -> dict[str, Any]:
    """Write the day's misses as batch JSONL and ``batch.json`` (model version, counts)."""
    ds, store, settings = run.ds, run.artifacts, run.settings

    started = time.perf_counter()
    cfg = settings.compose
    lines: dict[str, dict[str, Any]] = {}
    versions, counts = set(), {"users": 0, "authors": 0}
    for shard in plan_shards(cfg):
        planned = shard_inputs(run, shard["kind"], shard["shard"], shard["of"])
        versions.add(planned.version)
        model = planned.compose.batch_model or planned.compose.model
        counts[shard["kind"]] += len(planned.misses)
        for x in planned.misses:
            for section in planned.spec.sections:
                request = Request(planned.spec.messages(x.data, section),
                                  prefill=f"{section.name}:")
                line = batch_line(request, model, cfg.max_new_tokens)
                lines[line["custom_id"]] = line
    prefix = batch_prefix(ds)
    body = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines.values())
    store.put_text(f"{prefix}/requests.jsonl", body)
    meta = {"ds": ds, "model_version": sorted(versions)[0] if versions else "",
            "requests": len(lines), "inputs": counts,
            "seconds": round(time.perf_counter() - started, 1)}
    store.put_text(f"{prefix}/batch.json", json.dumps(meta, indent=2))
    log.info("batch of %s: %d requests (%d user and %d author texts to compose) in %s",
             ds, len(lines), counts["users"], counts["authors"],
             store.uri(f"{prefix}/requests.jsonl"))
    return {**meta, "requests_uri": store.uri(f"{prefix}/requests.jsonl"),
            "results_uri": store.uri(f"{prefix}/results.jsonl")}


def result_line(custom_id: str, index: int, generation: Generation, model: str) -> dict:
    """One line in the format vLLM's batch runner writes (OpenAI's batch output)."""
    return {"id": f"local-{index}", "custom_id": custom_id, "error": None,
            "response": {"status_code": 200, "request_id": f"local-{index}", "body": {
                "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": generation.text}}],
                "usage": {"prompt_tokens": generation.tokens_in,
                          "completion_tokens": generation.tokens_out}}}}


def run_locally(ds: str, store: ArtifactStore, backend: Backend) -> dict[str, Any]:
    """Answer the day's batch with an in-process backend, in the batch runner's format
    (``batch_launcher = "local"``: the embedded default and the tests)."""
    prefix = batch_prefix(ds)
    lines = [json.loads(x) for x in store.get_text(f"{prefix}/requests.jsonl").splitlines() if x]
    started = time.perf_counter()
    gens = backend.generate([request_of(line) for line in lines])
    out = "".join(json.dumps(result_line(line["custom_id"], i, g, backend.model_version),
                             ensure_ascii=False) + "\n"
                  for i, (line, g) in enumerate(zip(lines, gens, strict=True)))
    store.put_text(f"{prefix}/results.jsonl", out)
    log.info("batch of %s answered in-process: %d requests in %.1f s", ds, len(lines),
             time.perf_counter() - started)
    return {"requests": len(lines), "seconds": round(time.perf_counter() - started, 1)}
