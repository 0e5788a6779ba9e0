"""Acc@m of a recommender model: greedy answers to the examples, parsed by the rewards' parser.

Acc@m is the share of examples of candidate-set size ``m`` whose recommended author (see
:func:`mspa_tasks.align.rewards.parse_recommended`) is the ground truth; an answer naming no
candidate counts as wrong. Alongside: ``answered@m`` (a candidate was named), ``format@m``
(the three phrases in order) and ``chance@m`` (1/m, a random pick's expected accuracy).
"""

from __future__ import annotations

import logging
import time
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
    """Greedy completions of chat ``prompts`` (batched, shortest first to limit padding)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
             for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    started = time.perf_counter()
    for done, start in enumerate(range(0, len(order), batch_size), start=1):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        for i, row in zip(idx, out[:, enc["input_ids"].shape[1]:], strict=True):
            answers[i] = tokenizer.decode(row, skip_special_tokens=True)
        if done % 5 == 0 or start + batch_size >= len(order):
            log.info("%s: answered %d/%d examples (%.1f s)", label, min(start + batch_size,
                     len(order)), len(order), time.perf_counter() - started)
    del model
    return answers


def evaluate_model(model_path: str, rows: Sequence[dict[str, Any]], batch_size: int,
                   max_new_tokens: int, label: str = "model") -> tuple[dict[str, Any], list[str]]:
    """``(accuracy_report, answers)`` of the model at ``model_path`` on ``rows``."""
    answers = generate_answers(model_path, [r["prompt"] for r in rows], batch_size,
                               max_new_tokens, label)
    return accuracy_report(answers, rows), answers
