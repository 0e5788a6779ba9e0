"""Acc@m of a recommender model: greedy answers to the examples, parsed by the rewards' parser.

Acc@m is the share of examples of candidate-set size ``m`` whose recommended author (see
:func:`mspa_tasks.llm.answers.parse_recommended`) is the ground truth; an answer naming no
candidate counts as wrong. Alongside: ``answered@m`` (a candidate was named), ``format@m``
(the three phrases in order) and ``chance@m`` (1/m, a random pick's expected accuracy).

Memory versus preference: an example whose ground truth is among the authors shown in the
prompt's history (``gt_in_history``: the user tipped it before) can be solved by recognising
a name, not by understanding a taste (the candidate set never holds another tipped author).
``acc_shown@m`` and ``acc_unseen@m`` split Acc@m on that flag; a model that only copies from
the history scores chance or worse on the second. ``acc_repeat@m`` / ``acc_new@m`` split on
whether the user tipped the ground truth earlier in the window at all (shown or cut).

:func:`accuracy_intervals` gives every figure a 95% bootstrap interval over users and each
model's paired difference against a reference model (the replay's bootstrap,
:mod:`mspa_tasks.scoring.uncertainty`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mspa_tasks.llm.answers import has_format, parse_recommended
from mspa_tasks.llm.hf import TextBackend
from mspa_tasks.llm.requests import Request
from mspa_tasks.scoring.uncertainty import user_bootstrap

log = logging.getLogger(__name__)

# Segments of the examples: every example; ground truth shown in the history or not; ground
# truth tipped before in the window (repeat) or new to the user.
SEGMENTS = ("all", "shown", "unseen", "repeat", "new")


def outcomes(completions: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per example: ``correct``, ``answered``, ``format`` (0/1 floats).

    >>> rows = [{"candidate_ids": [1, 2], "ground_truth": 2}] * 3
    >>> {k: v.tolist() for k, v in outcomes(["Recommended author: 2", "1", "x"], rows).items()}
    {'correct': [1.0, 0.0, 0.0], 'answered': [1.0, 1.0, 0.0], 'format': [0.0, 0.0, 0.0]}
    """
    picked = [parse_recommended(c, r["candidate_ids"]) for c, r in zip(completions, rows,
                                                                        strict=True)]
    return {"correct": np.array([p == int(r["ground_truth"]) for p, r in zip(picked, rows,
                                                                            strict=True)], float),
            "answered": np.array([p is not None for p in picked], float),
            "format": np.array([has_format(c) for c in completions], float)}


def segment_mask(rows: Sequence[dict[str, Any]], segment: str) -> np.ndarray:
    """Which examples belong to ``segment`` (one of :data:`SEGMENTS`)."""
    shown = np.array([bool(r.get("gt_in_history")) for r in rows], bool)
    before = np.array([bool(r.get("gt_tipped_before")) for r in rows], bool)
    return {"all": np.ones(len(rows), bool), "shown": shown, "unseen": ~shown,
            "repeat": before, "new": ~before}[segment]


def accuracy_report(completions: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per ``m``: ``acc@m``, ``answered@m``, ``format@m``, ``chance@m``, ``n@m``, and Acc@m per
    segment of :data:`SEGMENTS` (``acc_shown@m``, ``acc_unseen@m``, ``acc_repeat@m``,
    ``acc_new@m`` with their ``n_``; None when a segment has no example).

    >>> rows = [{"m": 4, "candidate_ids": [1, 2, 3, 4], "ground_truth": 2,
    ...          "gt_in_history": s, "gt_tipped_before": s} for s in (True, False)]
    >>> r = accuracy_report(["Recommended author: 2", "recommended author: 9"], rows)
    >>> {k: r[k] for k in ("acc@4", "answered@4", "format@4", "chance@4", "n@4")}
    {'acc@4': 0.5, 'answered@4': 0.5, 'format@4': 0.0, 'chance@4': 0.25, 'n@4': 2}
    >>> r["acc_shown@4"], r["n_shown@4"], r["acc_unseen@4"], r["acc_new@4"]
    (1.0, 1, 0.0, 0.0)
    """
    out: dict[str, Any] = {}
    sizes = np.array([int(r["m"]) for r in rows])
    o = outcomes(completions, rows)
    for m in sorted(set(sizes.tolist())):
        at = sizes == m
        out[f"acc@{m}"] = float(o["correct"][at].mean())
        out[f"answered@{m}"] = float(o["answered"][at].mean())
        out[f"format@{m}"] = float(o["format"][at].mean())
        out[f"chance@{m}"] = 1 / m
        out[f"n@{m}"] = int(at.sum())
        for segment in SEGMENTS[1:]:
            part = at & segment_mask(rows, segment)
            out[f"acc_{segment}@{m}"] = float(o["correct"][part].mean()) if part.any() else None
            out[f"n_{segment}@{m}"] = int(part.sum())
    return out


def accuracy_intervals(answers: Mapping[str, Sequence[str]], rows: Sequence[dict[str, Any]],
                       reference: str, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Each model's ``acc``, ``format`` and ``answered`` per ``m`` and segment, with a 95%
    bootstrap interval over users and the paired difference against ``reference`` (every
    model resampled with the same draws). One row per (metric, m, segment, model):
    ``metric, m, segment, model, value, low, high, diff, diff_low, diff_high, significant,
    n, users``.

    >>> rows = [{"user_id": u, "m": 4, "candidate_ids": [1, 2, 3, 4], "ground_truth": 2}
    ...         for u in range(6)]
    >>> out = accuracy_intervals({"a": ["Recommended author: 2"] * 6,
    ...                           "b": ["Recommended author: 1"] * 6}, rows, "a", 100)
    >>> [(r["model"], r["value"], r["diff"], r["significant"]) for r in out
    ...  if r["metric"] == "acc" and r["segment"] == "all"]
    [('a', 1.0, None, None), ('b', 0.0, -1.0, True)]
    """

    per_model = {name: outcomes(list(a), rows) for name, a in answers.items()}
    sizes = np.array([int(r["m"]) for r in rows])
    users = np.array([int(r["user_id"]) for r in rows])
    out: list[dict[str, Any]] = []
    for m in sorted(set(sizes.tolist())):
        for segment in SEGMENTS:
            part = (sizes == m) & segment_mask(rows, segment)
            if not part.any():
                continue
            for metric, key in (("acc", "correct"), ("format", "format"),
                                ("answered", "answered")):
                est = user_bootstrap({name: o[key][part] for name, o in per_model.items()},
                                     users[part], n_boot, seed, reference)
                out += [{"metric": metric, "m": m, "segment": segment, "model": name,
                         **e.as_dict(), "n": int(part.sum())} for name, e in est.items()]
    return out


def generate_answers(model_path: str, prompts: Sequence[list[dict[str, str]]], batch_size: int,
                     max_new_tokens: int, label: str = "model") -> list[str]:
    """Greedy completions of chat ``prompts``, whole (not cut at a line), through the
    composer's batched text backend (length-sorted, left-padded batches; GPU when present)."""

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
