"""Rewards of MSPA's self-corrective preference alignment, in TRL's reward contract.

A reward is ``(completions, **kwargs) -> list[float | None]``; dataset columns arrive by name
as lists aligned with ``completions`` (TRL ``GRPOTrainer``). Each function's ``__name__`` is
its metric key. The columns used here:

* ``candidate_ids``: the ``m`` candidate author ids shown to the model, in prompt order;
* ``ground_truth``: the author the user actually tipped last;
* ``candidate_vectors``: the candidates' author vectors (unit length), same order.

The paper's three rewards: **accuracy** (1 if the recommended author is the ground truth),
**format** (the phrases "User Preference", "Recommendation Reason", "Recommended author"
present, in that order) and **similarity** (cosine between the recommended and the
ground-truth author vectors, clipped to [0, 1]; 0 when no candidate is named). Weights
λ1..λ3 come from config (TRL ``reward_weights``, in :data:`REWARDS` order).

:func:`parse_recommended` is the one parser of the recommendation, shared by the rewards and
the evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

PHRASES = ("User Preference", "Recommendation Reason", "Recommended author")
_RECOMMENDED = re.compile(r"recommended\s+author", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![0-9A-Za-z])[#]?(\d+)(?![0-9])")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list | tuple) and completion:
        last = completion[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    return ""


def parse_recommended(text: str, candidate_ids: Sequence[int]) -> int | None:
    """The candidate the text recommends, else None.

    With a "Recommended author" phrase (any case, any punctuation): the first candidate id
    after the last such phrase. Without one: the candidate, if the text names exactly one
    distinct candidate id (a text listing several recommends none of them). Numbers that are
    not candidates, and digits inside longer numbers, never count.

    >>> parse_recommended("Recommended author: 42.", [7, 42])
    42
    >>> parse_recommended("RECOMMENDED AUTHOR -> author #7 (the singer)", [7, 42])
    7
    >>> parse_recommended("Recommended author: 99", [7, 42]) is None
    True
    >>> parse_recommended("This streamer (42) fits", [7, 42]), parse_recommended("7 or 42?", [7, 42])
    (42, None)
    """
    text = text or ""
    allowed = {int(c) for c in candidate_ids}
    matches = list(_RECOMMENDED.finditer(text))
    if matches:
        for number in _NUMBER.finditer(text[matches[-1].end():]):
            if int(number.group(1)) in allowed:
                return int(number.group(1))
        return None
    named = {int(n.group(1)) for n in _NUMBER.finditer(text)} & allowed
    return named.pop() if len(named) == 1 else None


def has_format(text: str) -> bool:
    """The three phrases present, in order (case-insensitive).

    >>> has_format("User Preference: x. Recommendation Reason: y. Recommended author: 3")
    True
    >>> has_format("Recommended author: 3. User Preference: x. Recommendation Reason: y")
    False
    """
    lowered, start = (text or "").lower(), 0
    for phrase in PHRASES:
        found = lowered.find(phrase.lower(), start)
        if found < 0:
            return False
        start = found + len(phrase)
    return True


def accuracy_reward(completions: list[Any], candidate_ids: list[Sequence[int]],
                    ground_truth: list[int], **kwargs: Any) -> list[float]:
    """1.0 when the recommended author is the ground truth, else 0.0."""
    return [1.0 if parse_recommended(completion_text(c), ids) == int(gt) else 0.0
            for c, ids, gt in zip(completions, candidate_ids, ground_truth, strict=True)]


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when the three phrases appear in order, else 0.0."""
    return [1.0 if has_format(completion_text(c)) else 0.0 for c in completions]


def similarity_reward(completions: list[Any], candidate_ids: list[Sequence[int]],
                      ground_truth: list[int], candidate_vectors: list[Sequence[Sequence[float]]],
                      **kwargs: Any) -> list[float]:
    """cos(recommended, ground truth) clipped to [0, 1]; 0.0 when no candidate is named.

    The dense signal GRPO needs: with accuracy and format alone, every completion of a
    group often scores the same, and a group with zero reward variance has zero gradient.
    """
    out = []
    for c, ids, gt, vectors in zip(completions, candidate_ids, ground_truth, candidate_vectors,
                                   strict=True):
        picked = parse_recommended(completion_text(c), ids)
        if picked is None:
            out.append(0.0)
            continue
        order = [int(i) for i in ids]
        a = np.asarray(vectors[order.index(picked)], dtype=np.float64)
        b = np.asarray(vectors[order.index(int(gt))], dtype=np.float64)
        cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
        out.append(min(1.0, max(0.0, cos)))
    return out


RewardFunc = Callable[..., list[float | None]]
REWARDS: dict[str, RewardFunc] = {"accuracy": accuracy_reward, "format": format_reward,
                                  "similarity": similarity_reward}


def reward_functions(names: Sequence[str]) -> list[RewardFunc]:
    """The reward functions named in config, in order; unknown names are an error."""
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; choose from {sorted(REWARDS)}")
    return [REWARDS[n] for n in names]
