"""Candidate sets for alignment and evaluation: the ground truth among ``m - 1`` negatives.

For a user whose labelled tip went to ``gt``, the negatives are never authors the user
tipped in the window (they are not wrong answers). Two protocols (``negatives``):

* ``live`` (the paper's, the headline): the negatives are drawn at random among the authors
  live at the labelled tip's moment (:mod:`mspa_tasks.live`), the choice the user actually
  had. Without that knowledge (``live`` is None) they are drawn among all authors.
* ``hard``: half of them (rounded down) are the authors nearest to ``gt``'s vector, same
  category first; the rest random among the remaining authors. Near neighbours in the very
  space the similarity reward uses: a harder, less realistic set, reported beside.

The order is shuffled, so the ground truth's position is uniform. Every draw is seeded by
the user, ``m`` and a salt, so the same inputs always give the same sets (reruns are
identical).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mspa_tasks.sampling import stable_rng


class NotEnoughAuthors(ValueError):
    """Fewer eligible authors than the candidate set needs."""


def _rng(salt: str, user_id: int, m: int) -> np.random.Generator:
    return stable_rng(salt, f"{user_id}:{m}")


class CandidatePool:
    """The authors candidates are drawn from, indexed once: ids, unit vectors, category
    codes. Drawing is numpy over the pool (no per-author Python): a 100,000-author pool
    draws a set in milliseconds, so every test user of a scale day gets one."""

    def __init__(self, author_ids: Sequence[int], categories: Mapping[int, str | None],
                 vectors: np.ndarray) -> None:
        self.ids = np.asarray(author_ids, dtype=np.int64)
        self.vectors = vectors
        self.index = {int(a): i for i, a in enumerate(self.ids.tolist())}
        codes: dict[str | None, int] = {}
        self.category = np.array([codes.setdefault(categories.get(int(a)), len(codes))
                                  for a in self.ids.tolist()], dtype=np.int64)

    def draw(self, user_id: int, gt: int, tipped: set[int], m: int,
             salt: str = "mspa-candidates-v1", negatives: str = "hard",
             live: np.ndarray | None = None) -> list[int]:
        """``m`` author ids holding ``gt`` once, in a seeded shuffled order (module doc);
        ``live``: the ids of the authors live at the labelled tip (``negatives = "live"``)."""
        if m < 2:
            raise ValueError(f"m={m}: a candidate set needs the ground truth and a negative")
        if gt not in self.index:
            raise KeyError(f"ground truth {gt} of user {user_id} has no author vector")
        g = self.index[gt]
        # The ground truth is never its own negative, whether or not ``tipped`` holds it.
        excluded = np.fromiter(tipped | {gt}, dtype=np.int64, count=len(tipped | {gt}))
        eligible = ~np.isin(self.ids, excluded)
        if negatives == "live" and live is not None:
            eligible &= np.isin(self.ids, live)
        n_eligible = int(eligible.sum())
        if n_eligible < m - 1:
            raise NotEnoughAuthors(f"user {user_id}: {n_eligible} eligible negatives, "
                                   f"need {m - 1}")
        if negatives not in ("live", "hard"):
            raise ValueError(f"negatives={negatives!r}: use 'live' or 'hard'")
        scores = self.vectors @ self.vectors[g]
        same = self.category == self.category[g]
        # Hard: same category first, then nearest; ties broken by id for determinism.
        n_hard = (m - 1) // 2 if negatives == "hard" else 0
        hard: list[int] = []
        for group in (eligible & same, eligible & ~same):
            if len(hard) >= n_hard:
                break
            pos = np.flatnonzero(group)
            order = pos[np.lexsort((self.ids[pos], -scores[pos]))]
            hard += [int(a) for a in self.ids[order[: n_hard - len(hard)]]]
        rng = _rng(salt, user_id, m)
        rest = self.ids[eligible & ~np.isin(self.ids, np.asarray(hard, dtype=np.int64))]
        random = [int(a) for a in rng.choice(rest, size=m - 1 - n_hard, replace=False)]
        out = [gt, *hard, *random]
        rng.shuffle(out)
        return out


def candidate_set(user_id: int, gt: int, tipped: set[int], author_ids: Sequence[int],
                  categories: Mapping[int, str | None], vectors: np.ndarray, m: int,
                  salt: str = "mspa-candidates-v1") -> list[int]:
    """``m`` author ids holding ``gt`` once, in a seeded shuffled order.

    ``author_ids[i]`` has the unit vector ``vectors[i]``. (Many draws over the same authors:
    build one :class:`CandidatePool`.)

    >>> v = np.eye(6, dtype=np.float32)
    >>> v[1] = v[0] * 0.9 + v[1] * 0.1; v[1] /= np.linalg.norm(v[1])
    >>> ids = [10, 11, 12, 13, 14, 15]
    >>> cats = {10: "a", 11: "a", 12: "b", 13: "a", 14: "b", 15: "b"}
    >>> s = candidate_set(1, 10, {10, 13}, ids, cats, v, 4)
    >>> sorted(s)[:2], 13 in s, len(set(s))
    ([10, 11], False, 4)
    """
    return CandidatePool(author_ids, categories, vectors).draw(user_id, gt, tipped, m, salt)


def shortlist(user_vector: np.ndarray, author_vectors: np.ndarray, author_ids: Sequence[int],
              m: int) -> list[int]:
    """The first stage of the two-stage use: the ``m`` authors whose vectors score highest
    against ``user_vector`` (the dot product the serving collection ranks by), best first;
    ties keep the authors' order.

    >>> v = np.array([[1, 0], [0.6, 0.8], [0, 1], [0.8, 0.6]], dtype=np.float32)
    >>> shortlist(np.array([1, 0], np.float32), v, [10, 11, 12, 13], 3)
    [10, 13, 11]
    """
    scores = author_vectors @ user_vector
    order = np.lexsort((np.arange(len(scores)), -scores))[:m]
    ids = np.asarray(author_ids, dtype=np.int64)
    return [int(a) for a in ids[order]]
