"""Acc@m of a recommender model: greedy answers to the examples, parsed by the rewards' parser.

Acc@m is the share of examples of candidate-set size ``m`` whose recommended author (see
:func:`mspa_tasks.align.rewards.parse_recommended`) is the ground truth; an answer naming no
candidate counts as wrong. Alongside: ``answered@m`` (a candidate was named), ``format@m``
(the three phrases in order) and ``chance@m`` (1/m, a random pick's expected accuracy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from mspa_tasks.align.rewards import has_format, parse_recommended

log = logging.getLogger(__name__)


def accuracy_report(completions: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per ``m``: ``acc@m``, ``answered@m``, ``format@m``, ``chance@m`` and ``n@m``.

    >>> rows = [{"m": 4, "candidate_ids": [1, 2, 3, 4], "ground_truth": 2}] * 2
    >>> accuracy_report(["Recommended author: 2", "recommended author: 9"], rows)
    {'acc@4': 0.5, 'answered@4': 0.5, 'format@4': 0.0, 'chance@4': 0.25, 'n@4': 2}
    """
    out: dict[str, Any] = {}
    for m in sorted({int(r["m"]) for r in rows}):
        picked = [(parse_recommended(c, r["candidate_ids"]), r["ground_truth"], has_format(c))
                  for c, r in zip(completions, rows, strict=True) if int(r["m"]) == m]
        n = len(picked)
        out[f"acc@{m}"] = sum(p == gt for p, gt, _ in picked) / n
        out[f"answered@{m}"] = sum(p is not None for p, _, _ in picked) / n
        out[f"format@{m}"] = sum(f for _, _, f in picked) / n
        out[f"chance@{m}"] = 1 / m
        out[f"n@{m}"] = n
    return out


def generate_answers(model_path: str, prompts: Sequence[list[dict[str, str]]], batch_size: int,
                     max_new_tokens: int, label: str = "model") -> list[str]:
    """Greedy completions of chat ``prompts``, whole (not cut at a line), through the
    composer's batched text backend (length-sorted, left-padded batches; GPU when present)."""
    from mspa_tasks.compose.backends import Request, TextBackend

    backend = TextBackend(model_path, batch_size, max_new_tokens, repetition_penalty=1.0,
                          one_line=False, label=f"{label}: answer")
    answers = [g.text for g in backend.generate([Request(messages=list(p)) for p in prompts])]
    del backend
    return answers


def evaluate_model(model_path: str, rows: Sequence[dict[str, Any]], batch_size: int,
                   max_new_tokens: int, label: str = "model") -> tuple[dict[str, Any], list[str]]:
    """``(accuracy_report, answers)`` of the model at ``model_path`` on ``rows``."""
    answers = generate_answers(model_path, [r["prompt"] for r in rows], batch_size,
                               max_new_tokens, label)
    return accuracy_report(answers, rows), answers
