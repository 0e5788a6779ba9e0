"""The composer's batch results as the shards read them (:mod:`.batch` writes the batch):
where a day's batch lives, each request's ``custom_id``, and the answers as a backend."""

from __future__ import annotations

import hashlib
import json
import logging

from mspa_tasks.artifacts import ArtifactNotFound, ArtifactStore
from mspa_tasks.llm.requests import Generation, Request, first_line

log = logging.getLogger(__name__)


def batch_prefix(ds: str) -> str:
    return f"_staging/compose_batch/ds={ds}"


def request_id(request: Request) -> str:
    """The ``custom_id`` of a request: a hash of exactly what the model reads.

    >>> r = Request([{"role": "user", "content": "hi"}], prefill="A:")
    >>> request_id(r) == request_id(Request(r.messages, prefill="A:")) != request_id(
    ...     Request(r.messages, prefill="B:"))
    True
    """
    key = json.dumps({"messages": request.messages, "prefill": request.prefill},
                     sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def read_results(store: ArtifactStore, ds: str) -> tuple[dict[str, Generation], int]:
    """``(custom_id -> answer, lines that carry an error)`` of the day's batch results."""
    prefix = batch_prefix(ds)
    try:
        text = store.get_text(f"{prefix}/results.jsonl")
    except ArtifactNotFound as exc:
        raise ArtifactNotFound(f"{store.uri(prefix)}/results.jsonl is missing: run "
                               "compose.batch_generate for this day first") from exc
    answers, errors = {}, 0
    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        response = line.get("response") or {}
        if line.get("error") or response.get("status_code") != 200:
            errors += 1
            continue
        body = response["body"]
        usage = body.get("usage") or {}
        content = body["choices"][0]["message"].get("content") or ""
        answers[line["custom_id"]] = Generation(first_line(content),
                                                int(usage.get("prompt_tokens") or 0),
                                                int(usage.get("completion_tokens") or 0))
    return answers, errors


class ResultsBackend:
    """The batch's answers as a composer backend: first pass by ``custom_id``; nothing to
    sample for a retry (module doc)."""

    modality = "text"

    def __init__(self, answers: dict[str, Generation], model_version: str) -> None:
        self.answers, self.model_version = answers, model_version
        self.missing = 0

    def generate(self, requests: list[Request], seed: int | None = None) -> list[Generation]:
        if seed is not None:  # a sampled retry: no server here
            return [Generation("", 0, 0) for _ in requests]
        out = []
        for r in requests:
            got = self.answers.get(request_id(r))
            if got is None:
                self.missing += 1
            out.append(got or Generation("", 0, 0))
        if self.missing:
            log.warning("%d requests have no answer in the batch results: stored as failed",
                        self.missing)
        return out


def results_backend(ds: str, kind: str, store: ArtifactStore, version: str) -> ResultsBackend:
    """The answers of ``ds``'s batch for a shard of ``kind``, checked against the model."""
    meta = json.loads(store.get_text(f"{batch_prefix(ds)}/batch.json"))
    if meta["model_version"] and meta["model_version"] != version:
        raise ValueError(f"the batch of {ds} was exported for {meta['model_version']}, the "
                         f"composer now writes with {version}: rerun compose.batch_generate")
    answers, errors = read_results(store, ds)
    log.info("%s: %d batch answers read (%d error lines)", kind, len(answers), errors)
    return ResultsBackend(answers, version)
