"""Rewards of MSPA's self-corrective preference alignment, in TRL's reward contract.

A reward is ``(completions, **kwargs) -> list[float | None]``; dataset columns arrive by name
as lists aligned with ``completions`` (TRL ``GRPOTrainer``). Each function's ``__name__`` is
its metric key. The columns used here:

* ``candidate_ids``: the ``m`` candidate author ids shown to the model, in prompt order;
* ``candidate_labels``: the labels the prompt shows them by (letters; absent: the ids), the
  one label-to-id map the answer is read with;
* ``ground_truth``: the author the user actually tipped last;
* ``candidate_vectors``: the candidates' author vectors (unit length), same order.

The paper's three rewards: **accuracy** (1 if the recommended author is the ground truth),
**format** (the phrases "User Preference", "Recommendation Reason", "Recommended author"
present, in that order) and **similarity** (cosine between the recommended and the
ground-truth author vectors, clipped to [0, 1]; 0 when no candidate is named). Weights
λ1..λ3 come from config (TRL ``reward_weights``, in :data:`REWARDS` order).

**similarity_rank** replaces similarity where the negatives crowd the truth: the picked
candidate's place when the set is ordered by closeness to the truth, from 1 (the truth) to 0
(the farthest). With hard negatives (the truth's nearest neighbours) a wrong pick earns a
cosine of ~0.96 against 1.0, almost no difference for GRPO's advantage to act on; the rank
spreads every set over [0, 1] whatever its geometry.

:func:`~mspa_tasks.llm.answers.parse_recommended` is the one parser of the recommendation,
shared by the rewards and the evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mspa_tasks.llm.answers import completion_text, has_format, parse_recommended


def _labels(candidate_ids: list[Sequence[int]], candidate_labels: list[Sequence[str]] | None
            ) -> list[Sequence[str] | None]:
    return list(candidate_labels) if candidate_labels is not None else [None] * len(
        candidate_ids)


def accuracy_reward(completions: list[Any], candidate_ids: list[Sequence[int]],
                    ground_truth: list[int], candidate_labels: list[Sequence[str]] | None = None,
                    **kwargs: Any) -> list[float]:
    """1.0 when the recommended author is the ground truth, else 0.0.

    >>> accuracy_reward(["Recommended author: B", "Recommended author: 2"], [[1, 2]] * 2,
    ...                 [2, 2], [["A", "B"], ["A", "B"]])
    [1.0, 0.0]
    """
    return [1.0 if parse_recommended(completion_text(c), ids, labels) == int(gt) else 0.0
            for c, ids, gt, labels in zip(completions, candidate_ids, ground_truth,
                                          _labels(candidate_ids, candidate_labels), strict=True)]


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when the three phrases appear in order, else 0.0."""
    return [1.0 if has_format(completion_text(c)) else 0.0 for c in completions]


def similarity_reward(completions: list[Any], candidate_ids: list[Sequence[int]],
                      ground_truth: list[int], candidate_vectors: list[Sequence[Sequence[float]]],
                      candidate_labels: list[Sequence[str]] | None = None,
                      **kwargs: Any) -> list[float]:
    """cos(recommended, ground truth) clipped to [0, 1]; 0.0 when no candidate is named.

    The dense signal GRPO needs: with accuracy and format alone, every completion of a
    group often scores the same, and a group with zero reward variance has zero gradient.
    """
    out = []
    for c, ids, gt, vectors, labels in zip(completions, candidate_ids, ground_truth,
                                           candidate_vectors,
                                           _labels(candidate_ids, candidate_labels), strict=True):
        picked = parse_recommended(completion_text(c), ids, labels)
        if picked is None:
            out.append(0.0)
            continue
        order = [int(i) for i in ids]
        a = np.asarray(vectors[order.index(picked)], dtype=np.float64)
        b = np.asarray(vectors[order.index(int(gt))], dtype=np.float64)
        cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
        out.append(min(1.0, max(0.0, cos)))
    return out


def similarity_rank_reward(completions: list[Any], candidate_ids: list[Sequence[int]],
                           ground_truth: list[int],
                           candidate_vectors: list[Sequence[Sequence[float]]],
                           candidate_labels: list[Sequence[str]] | None = None,
                           **kwargs: Any) -> list[float]:
    """1 - (the pick's rank by cosine to the truth) / (m - 1): 1.0 for the truth, 0.0 for the
    candidate farthest from it or no pick (ties share the better rank).

    >>> v = [[1.0, 0.0], [0.96, 0.28], [0.0, 1.0]]
    >>> similarity_rank_reward(["Recommended author: B", "Recommended author: C", "none"],
    ...                        [[1, 2, 3]] * 3, [1] * 3, [v] * 3, [["A", "B", "C"]] * 3)
    [0.5, 0.0, 0.0]
    """
    out = []
    for c, ids, gt, vectors, labels in zip(completions, candidate_ids, ground_truth,
                                           candidate_vectors,
                                           _labels(candidate_ids, candidate_labels), strict=True):
        picked = parse_recommended(completion_text(c), ids, labels)
        if picked is None or len(ids) < 2:
            out.append(0.0)
            continue
        order = [int(i) for i in ids]
        v = np.asarray(vectors, dtype=np.float64)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        cos = v @ v[order.index(int(gt))]
        closer = int((cos > cos[order.index(picked)] + 1e-9).sum())
        out.append(1.0 - closer / (len(ids) - 1))
    return out


RewardFunc = Callable[..., list[float | None]]
REWARDS: dict[str, RewardFunc] = {"accuracy": accuracy_reward, "format": format_reward,
                                  "similarity": similarity_reward,
                                  "similarity_rank": similarity_rank_reward}


def reward_if_picked(name: str, row: dict[str, Any]) -> list[float]:
    """What the reward ``name`` pays for each candidate of an example, were it the pick: how
    much a reward tells a right answer from each wrong one.

    >>> row = {"candidate_ids": [1, 2, 3], "ground_truth": 1, "candidate_labels": ["A", "B", "C"],
    ...        "candidate_vectors": [[1.0, 0.0], [0.96, 0.28], [0.0, 1.0]]}
    >>> reward_if_picked("similarity", row), reward_if_picked("similarity_rank", row)
    ([1.0, 0.96, 0.0], [1.0, 0.5, 0.0])
    """
    labels = row.get("candidate_labels") or [str(a) for a in row["candidate_ids"]]
    n = len(labels)
    return [round(float(r), 6) for r in REWARDS[name](
        [f"Recommended author: {label}" for label in labels], [row["candidate_ids"]] * n,
        [row["ground_truth"]] * n, candidate_vectors=[row["candidate_vectors"]] * n,
        candidate_labels=[labels] * n)]


def reward_functions(names: Sequence[str]) -> list[RewardFunc]:
    """The reward functions named in config, in order; unknown names are an error."""
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; choose from {sorted(REWARDS)}")
    return [REWARDS[n] for n in names]
