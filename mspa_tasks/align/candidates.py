"""Candidate sets for alignment and evaluation: the ground truth among ``m - 1`` negatives.

For a user whose last tipped author is ``gt``, the negatives are never authors the user
tipped in the window (they are not wrong answers). Half of them (rounded down) are *hard*:
the authors nearest to ``gt``'s vector, same category first; the rest are drawn at random
from the remaining authors. The order is shuffled. Every draw is seeded by the user, ``m``
and a salt, so the same inputs always give the same sets (reruns are identical).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np


class NotEnoughAuthors(ValueError):
    """Fewer eligible authors than the candidate set needs."""


def _rng(salt: str, user_id: int, m: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{salt}:{user_id}:{m}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def candidate_set(user_id: int, gt: int, tipped: set[int], author_ids: Sequence[int],
                  categories: Mapping[int, str | None], vectors: np.ndarray, m: int,
                  salt: str = "mspa-candidates-v1") -> list[int]:
    """``m`` author ids holding ``gt`` once, in a seeded shuffled order.

    ``author_ids[i]`` has the unit vector ``vectors[i]``.

    >>> v = np.eye(6, dtype=np.float32)
    >>> v[1] = v[0] * 0.9 + v[1] * 0.1; v[1] /= np.linalg.norm(v[1])
    >>> ids = [10, 11, 12, 13, 14, 15]
    >>> cats = {10: "a", 11: "a", 12: "b", 13: "a", 14: "b", 15: "b"}
    >>> s = candidate_set(1, 10, {10, 13}, ids, cats, v, 4)
    >>> sorted(s)[:2], 13 in s, len(set(s))
    ([10, 11], False, 4)
    """
    if m < 2:
        raise ValueError(f"m={m}: a candidate set needs the ground truth and a negative")
    index = {int(a): i for i, a in enumerate(author_ids)}
    if gt not in index:
        raise KeyError(f"ground truth {gt} of user {user_id} has no author vector")
    # The ground truth is never its own negative, whether or not ``tipped`` holds it.
    eligible = np.array([a not in tipped and a != gt for a in author_ids], dtype=bool)
    if eligible.sum() < m - 1:
        raise NotEnoughAuthors(f"user {user_id}: {int(eligible.sum())} eligible negatives, "
                               f"need {m - 1}")
    ids = np.asarray(author_ids, dtype=np.int64)
    scores = vectors @ vectors[index[gt]]
    same = np.array([categories.get(int(a)) == categories.get(gt) for a in ids], dtype=bool)
    # Hard: same category first, then nearest; ties broken by id for determinism.
    order = np.lexsort((ids, -scores, ~same))
    n_hard = (m - 1) // 2
    hard = [int(ids[i]) for i in order if eligible[i]][:n_hard]
    rng = _rng(salt, user_id, m)
    rest = np.array([int(a) for a, ok in zip(ids, eligible, strict=True)
                     if ok and int(a) not in hard], dtype=np.int64)
    random = [int(a) for a in rng.choice(rest, size=m - 1 - n_hard, replace=False)]
    out = [gt, *hard, *random]
    rng.shuffle(out)
    return out
