"""Acc@m of a recommender model: its choice among each example's candidates.

Two ways to read the choice (``align.gate.choice``):

* **generated**: the greedy answer, parsed by the rewards' parser
  (:func:`mspa_tasks.llm.answers.parse_choice`); an answer naming no candidate counts as
  wrong;
* **scored** (LlamaRec's way): after the greedy answer's own preference and reason, one
  forward pass reads the probability of each candidate's *label* as the token after
  "Recommended author:" (:meth:`~mspa_tasks.llm.hf.TextBackend.next_token_logprobs`). Every
  candidate gets a score, so the choice is never invalid and the m candidates get a full
  order: Recall@K and NDCG@K (K < m) as the paper's Table 1 reports them.

Acc@m is the share of examples of candidate-set size ``m`` whose choice is the ground truth.
Alongside: ``answered@m`` (a candidate was named), ``format@m`` (the three phrases in order,
from the generated answer either way), ``chance@m`` (1/m, a random pick's expected accuracy),
and with a full order ``recall{K}@m`` / ``ndcg{K}@m``.

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mspa_tasks.llm.answers import PHRASES, has_format, labels_of, parse_choice
from mspa_tasks.llm.hf import TextBackend
from mspa_tasks.llm.requests import Request
from mspa_tasks.scoring.uncertainty import user_bootstrap

log = logging.getLogger(__name__)

# Segments of the examples: every example; ground truth shown in the history or not; ground
# truth tipped before in the window (repeat) or new to the user.
SEGMENTS = ("all", "shown", "unseen", "repeat", "new")


CUTOFFS = (5, 10)  # Recall@K and NDCG@K of a full order, K < m


@dataclass(frozen=True)
class Choices:
    """One model's answers to a list of examples: what it wrote, and, when it ranked the
    candidates by scoring, each example's candidate positions best first."""

    texts: list[str]
    orders: list[list[int]] | None = None

    @classmethod
    def of(cls, answers: Choices | Sequence[str]) -> Choices:
        return answers if isinstance(answers, Choices) else cls(list(answers))


def outcomes(answers: Choices | Sequence[str],
             rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per example: ``correct``, ``answered``, ``format`` (0/1 floats); with a full order
    also ``recall{K}`` and ``ndcg{K}`` (NaN where K >= m: the whole set, nothing to rank).

    >>> rows = [{"candidate_ids": [1, 2], "ground_truth": 2}] * 3
    >>> {k: v.tolist() for k, v in outcomes(["Recommended author: 2", "1", "x"], rows).items()}
    {'correct': [1.0, 0.0, 0.0], 'answered': [1.0, 1.0, 0.0], 'format': [0.0, 0.0, 0.0]}
    >>> rows = [{"candidate_ids": list(range(10)), "ground_truth": 3, "m": 10}]
    >>> o = outcomes(Choices(["x"], [[5, 3, 0, 1, 2, 4, 6, 7, 8, 9]]), rows)
    >>> o["correct"].tolist(), o["recall5"].tolist(), round(float(o["ndcg5"][0]), 4)
    ([0.0], [1.0], 0.6309)
    """
    answers = Choices.of(answers)
    truth = [[int(c) for c in r["candidate_ids"]].index(int(r["ground_truth"])) for r in rows]
    fmt = np.array([has_format(t) for t in answers.texts], float)
    if answers.orders is None:
        picked = [parse_choice(t, labels_of(r)) for t, r in zip(answers.texts, rows,
                                                                  strict=True)]
        return {"correct": np.array([p == g for p, g in zip(picked, truth, strict=True)], float),
                "answered": np.array([p is not None for p in picked], float), "format": fmt}
    rank = np.array([list(o).index(g) for o, g in zip(answers.orders, truth, strict=True)])
    sizes = np.array([len(r["candidate_ids"]) for r in rows])
    out = {"correct": (rank == 0).astype(float), "answered": np.ones(len(rows)), "format": fmt}
    for k in CUTOFFS:
        valid = k < sizes
        out[f"recall{k}"] = np.where(valid, (rank < k).astype(float), np.nan)
        out[f"ndcg{k}"] = np.where(valid, np.where(rank < k, 1 / np.log2(rank + 2), 0.0), np.nan)
    return out


def segment_mask(rows: Sequence[dict[str, Any]], segment: str) -> np.ndarray:
    """Which examples belong to ``segment`` (one of :data:`SEGMENTS`)."""
    shown = np.array([bool(r.get("gt_in_history")) for r in rows], bool)
    before = np.array([bool(r.get("gt_tipped_before")) for r in rows], bool)
    return {"all": np.ones(len(rows), bool), "shown": shown, "unseen": ~shown,
            "repeat": before, "new": ~before}[segment]


def accuracy_report(completions: Choices | Sequence[str],
                    rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per ``m``: ``acc@m``, ``answered@m``, ``format@m``, ``chance@m``, ``n@m``, Acc@m per
    segment of :data:`SEGMENTS` (``acc_shown@m``, ``acc_unseen@m``, ``acc_repeat@m``,
    ``acc_new@m`` with their ``n_``; None when a segment has no example) and, with a full
    order, ``recall{K}@m`` / ``ndcg{K}@m`` for K < m.

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
        for k in CUTOFFS:
            if f"recall{k}" in o and k < m:
                out[f"recall{k}@{m}"] = float(o[f"recall{k}"][at].mean())
                out[f"ndcg{k}@{m}"] = float(o[f"ndcg{k}"][at].mean())
        for segment in SEGMENTS[1:]:
            part = at & segment_mask(rows, segment)
            out[f"acc_{segment}@{m}"] = float(o["correct"][part].mean()) if part.any() else None
            out[f"n_{segment}@{m}"] = int(part.sum())
    return out


def accuracy_intervals(answers: Mapping[str, Choices | Sequence[str]],
                       rows: Sequence[dict[str, Any]], reference: str, n_boot: int = 1000,
                       seed: int = 0) -> list[dict[str, Any]]:
    """Each model's ``acc``, ``format`` and ``answered`` (and, for models that ranked by
    scoring, ``recall{K}`` / ``ndcg{K}`` for K < m) per ``m`` and segment, with a 95%
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

    per_model = {name: outcomes(a, rows) for name, a in answers.items()}
    sizes = np.array([int(r["m"]) for r in rows])
    users = np.array([int(r["user_id"]) for r in rows])
    out: list[dict[str, Any]] = []
    for m in sorted(set(sizes.tolist())):
        for segment in SEGMENTS:
            part = (sizes == m) & segment_mask(rows, segment)
            if not part.any():
                continue
            ranked = [(f"{kind}{k}", f"{kind}{k}") for k in CUTOFFS if k < m
                      for kind in ("recall", "ndcg")]
            for metric, key in (("acc", "correct"), ("format", "format"),
                                ("answered", "answered"), *ranked):
                values = {name: o[key][part] for name, o in per_model.items() if key in o}
                if not values:
                    continue
                est = user_bootstrap(values, users[part], n_boot, seed, reference)
                out += [{"metric": metric, "m": m, "segment": segment, "model": name,
                         **e.as_dict(), "n": int(part.sum())} for name, e in est.items()]
    return out


def accuracy_by_position(answers: Mapping[str, Choices | Sequence[str]],
                         rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Acc@m per position of the ground truth in the prompt (0 = first candidate), per model
    and ``m``: a model that always picks the first candidate scores 1 at position 0 and 0
    elsewhere (small models lean to an order; the sets place the truth uniformly).

    >>> rows = [{"m": 2, "candidate_ids": [1, 2], "ground_truth": g} for g in (1, 2)]
    >>> [(r["position"], r["acc"]) for r in accuracy_by_position(
    ...     {"first": ["Recommended author: 1"] * 2}, rows)]
    [(0, 1.0), (1, 0.0)]
    """
    position = np.array([[int(c) for c in r["candidate_ids"]].index(int(r["ground_truth"]))
                         for r in rows])
    sizes = np.array([int(r["m"]) for r in rows])
    out = []
    for name, a in answers.items():
        correct = outcomes(a, rows)["correct"]
        for m in sorted(set(sizes.tolist())):
            for pos in range(m):
                at = (sizes == m) & (position == pos)
                if at.any():
                    out.append({"model": name, "m": m, "position": pos,
                                "acc": float(correct[at].mean()), "n": int(at.sum())})
    return out


_CHOICE = re.compile(r"recommended\s+author\s*:?", re.IGNORECASE)


def choice_prefix(answer: str) -> str:
    r"""What the scored choice is read after: the greedy answer up to its "Recommended
    author:" (the model's own preference and reason before it), or the whole answer with that
    line added when it wrote none.

    >>> choice_prefix("User Preference: x\nRecommendation Reason: y\nRecommended author: C")
    'User Preference: x\nRecommendation Reason: y\nRecommended author:'
    >>> choice_prefix("User Preference: x")
    'User Preference: x\nRecommended author:'
    """
    found = list(_CHOICE.finditer(answer or ""))
    if found:
        return answer[:found[-1].start()] + f"{PHRASES[2]}:"
    return (answer or "").rstrip() + ("\n" if (answer or "").strip() else "") + f"{PHRASES[2]}:"


def score_choices(backend: TextBackend, rows: Sequence[dict[str, Any]],
                  answers: Sequence[str]) -> list[list[int]]:
    """Each example's candidate positions, best first, by the log-probability of each label
    after :func:`choice_prefix` of its answer (ties keep prompt order)."""
    requests = [Request(messages=list(r["prompt"]), prefill=choice_prefix(a))
                for r, a in zip(rows, answers, strict=True)]
    tokens = [backend.label_token_ids(labels_of(r)) for r in rows]
    logprobs = backend.next_token_logprobs(requests, tokens)
    return [np.argsort(-np.asarray(lp), kind="stable").tolist() for lp in logprobs]


def choose(model_path: str, rows: Sequence[dict[str, Any]], batch_size: int,
           max_new_tokens: int, choice: str = "scored", label: str = "model") -> Choices:
    """The model's answers to ``rows`` and, with ``choice = "scored"``, each example's full
    order of its candidates (module doc)."""
    if choice not in ("generated", "scored"):
        raise ValueError(f"choice={choice!r}: 'generated' or 'scored'")
    backend = TextBackend(model_path, batch_size, max_new_tokens, repetition_penalty=1.0,
                          one_line=False, label=f"{label}: answer")
    texts = [g.text for g in backend.generate([Request(messages=list(r["prompt"]))
                                               for r in rows])]
    orders = score_choices(backend, rows, texts) if choice == "scored" else None
    del backend
    return Choices(texts, orders)


def evaluate_model(model_path: str, rows: Sequence[dict[str, Any]], batch_size: int,
                   max_new_tokens: int, label: str = "model",
                   choice: str = "scored") -> tuple[dict[str, Any], Choices]:
    """``(accuracy_report, choices)`` of the model at ``model_path`` on ``rows``."""
    choices = choose(model_path, rows, batch_size, max_new_tokens, choice, label)
    return accuracy_report(choices, rows), choices
