"""Generation with validation and retries: every section of every rendered input, failing
sections re-tried (sampled, fixed seeds) up to ``compose.retries`` times, what still fails
returned as ``failed`` with the check it broke.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from mspa_tasks.llm.prompting import PromptSpec, RenderedInput
from mspa_tasks.llm.requests import Backend, Request
from mspa_tasks.llm.validate import assemble, section_problem

log = logging.getLogger(__name__)


@dataclass
class Composed:
    text: str
    status: str
    reason: str | None
    tokens_in: int
    tokens_out: int
    attempts: int


def compose_texts(inputs: list[RenderedInput], spec: PromptSpec, backend: Backend,
                  retries: int, images: dict[int, tuple] | None = None,
                  extractive: bool = False) -> dict[int, Composed]:
    """Generate every section of every input; re-try failing sections (sampled, fixed seed)
    up to ``retries`` times; what still fails is returned with status ``failed``."""
    n_sections = len(spec.sections)
    answers: dict[tuple[int, int], str] = {}
    problems: dict[tuple[int, int], str | None] = {}
    tokens_in: dict[int, int] = defaultdict(int)
    tokens_out: dict[int, int] = defaultdict(int)
    attempts: dict[int, int] = defaultdict(int)
    pending = [(i, s) for i in range(len(inputs)) for s in range(n_sections)]
    for attempt in range(retries + 1):
        if not pending:
            break
        requests = [Request(spec.messages(inputs[i].data, spec.sections[s]),
                            prefill=f"{spec.sections[s].name}:",
                            images=(images or {}).get(inputs[i].entity_id, ()),
                            vocabulary=inputs[i].data if extractive else None)
                    for i, s in pending]
        seed = None if attempt == 0 else 1000 + attempt
        if attempt == 0 and hasattr(backend, "generate_groups"):
            # First pass: every section of every input; share each input's prompt prefix.
            grouped = backend.generate_groups(
                [requests[i * n_sections:(i + 1) * n_sections] for i in range(len(inputs))])
            gens = [g for group in grouped for g in group]
        else:
            gens = backend.generate(requests, seed=seed)
        for (i, s), gen in zip(pending, gens, strict=True):
            answers[i, s] = gen.text
            problems[i, s] = section_problem(gen.text, inputs[i].data)
            tokens_in[i] += gen.tokens_in
            tokens_out[i] += gen.tokens_out
        for i in {i for i, _ in pending}:
            attempts[i] = attempt + 1
        pending = [(i, s) for i, s in pending if problems[i, s]]
        if pending:
            log.info("attempt %d: %d section answers failed validation; %s", attempt + 1,
                     len(pending), "retrying" if attempt < retries else "storing as failed")
    out = {}
    for i, item in enumerate(inputs):
        sections = [(spec.sections[s].name, answers[i, s]) for s in range(n_sections)]
        failed = [f"{spec.sections[s].name}: {problems[i, s]}" for s in range(n_sections)
                  if problems[i, s]]
        out[item.entity_id] = Composed(
            text=assemble(sections), status="failed" if failed else "ok",
            reason="; ".join(failed) or None, tokens_in=tokens_in[i],
            tokens_out=tokens_out[i], attempts=attempts[i])
    return out
