"""The replay's baselines, trained on the same window MSPA sees, in the same run.

* **popularity**: an author's score is ``log(1 + tips)`` in the window; the same ranking for
  every user (the floor any recommender must clear).
* **als** (the paper's ID-based author embedding): ``implicit``'s alternating least squares
  on the user x author matrix of tip counts in the window. User and author factors score by
  dot product; authors compare by cosine of their factors (A2A).

Both are trained on the window's kept sessions **minus the held-out last tip of test users**
(the ground truth of Acc@m), so neither baseline has seen what it is asked to predict.

* **fused** (:func:`fuse`), for consumers who have interaction history: MSPA's cosine and
  ALS's score, each divided by its spread over user x author pairs, mixed with MSPA's weight
  ``w``: ``w * cos / s_mspa + (1 - w) * als / s_als``. ``w`` is chosen on validation users by
  the encoder alignment of the model day (:mod:`mspa_tasks.vectors.alignment`), never on the
  replayed day. It is a dot product of concatenated vectors, so it can be served from one
  vector field: author ``[v_mspa, v_als]``, user ``[w u_mspa / s_mspa, (1 - w) u_als / s_als]``.
  An author with no interaction has an ALS vector near zero: the fused score is then MSPA's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from mspa_tasks.config import ReplayConfig

log = logging.getLogger(__name__)

# The scorers a replay compares, by name (the rows of every report).
MSPA = "mspa"
FUSED = "fused"  # MSPA's cosine fused with ALS's score (:func:`fuse`)
BASELINES = ("popularity", "als")
MODELS = (MSPA, FUSED, *BASELINES)


@dataclass(frozen=True)
class Scorer:
    """Vectors whose dot products are a model's scores: ``users[i] @ items[j]``."""

    name: str
    users: np.ndarray   # (n_users, d), rows aligned with the replay's user index
    items: np.ndarray   # (n_items, d), rows aligned with the replay's author index
    meta: dict = field(default_factory=dict, compare=False)  # e.g. the fused score's weight

    def item_unit(self) -> np.ndarray:
        norms = np.linalg.norm(self.items, axis=1, keepdims=True)
        return self.items / np.where(norms > 0, norms, 1.0)


def score_spread(scorer: Scorer, rows: np.ndarray | None = None, sample: int = 100_000,
                 seed: int = 0) -> float:
    """The standard deviation of ``scorer``'s scores over random (user, author) pairs of
    the users ``rows`` (all by default); 1.0 when the scores do not vary.

    >>> s = Scorer("x", np.array([[1.0], [2.0]]), np.array([[1.0], [3.0]]))
    >>> round(score_spread(s), 3) > 0
    True
    """
    users = np.arange(len(scorer.users)) if rows is None else np.asarray(rows)
    if not len(users) or not len(scorer.items):
        return 1.0
    rng = np.random.default_rng(seed)
    u = rng.choice(users, size=sample)
    a = rng.integers(0, len(scorer.items), size=sample)
    scores = np.einsum("ij,ij->i", scorer.users[u].astype(np.float64),
                       scorer.items[a].astype(np.float64))
    spread = float(scores.std())
    return spread if spread > 1e-12 else 1.0


def fuse(mspa: Scorer, ids: Scorer, weight: float, rows: np.ndarray | None = None,
         name: str = FUSED) -> Scorer:
    """MSPA's weight ``weight`` in the fused score (module doc); spreads over ``rows``.

    >>> m = Scorer("mspa", np.eye(2), np.eye(2))
    >>> a = Scorer("als", 3 * np.eye(2), np.eye(2))
    >>> f = fuse(m, a, 1.0)
    >>> bool(np.allclose(f.users @ f.items.T, (m.users @ m.items.T) / score_spread(m)))
    True
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fusion weight {weight} is not in [0, 1]")
    users = np.hstack([weight * mspa.users / score_spread(mspa, rows),
                       (1.0 - weight) * ids.users / score_spread(ids, rows)])
    return Scorer(name, users.astype(np.float32),
                  np.hstack([mspa.items, ids.items]).astype(np.float32))


def interaction_matrix(user_rows: np.ndarray, item_rows: np.ndarray, n_users: int,
                       n_items: int):
    """CSR user x item matrix of event counts (float32)."""
    from scipy.sparse import csr_matrix

    data = np.ones(len(user_rows), dtype=np.float32)
    matrix = csr_matrix((data, (user_rows, item_rows)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    return matrix


def popularity(user_rows: np.ndarray, item_rows: np.ndarray, n_users: int,
               n_items: int) -> Scorer:
    counts = np.bincount(item_rows, minlength=n_items).astype(np.float32)
    return Scorer("popularity", np.ones((n_users, 1), np.float32),
                  np.log1p(counts)[:, None].astype(np.float32))


def als(user_rows: np.ndarray, item_rows: np.ndarray, n_users: int, n_items: int,
        cfg: ReplayConfig) -> Scorer:
    """ALS factors from ``implicit`` (CPU, single BLAS thread as implicit recommends)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = interaction_matrix(user_rows, item_rows, n_users, n_items)
    with threadpool_limits(1, "blas"):  # implicit checks this when the model is built
        model = AlternatingLeastSquares(factors=cfg.als_factors,
                                        regularization=cfg.als_regularization,
                                        iterations=cfg.als_iterations, random_state=cfg.seed,
                                        calculate_training_loss=False)
        model.fit(matrix, show_progress=False)
    log.info("ALS: %d factors, %d iterations on %d users x %d authors (%d nonzeros)",
             cfg.als_factors, cfg.als_iterations, n_users, n_items, matrix.nnz)
    return Scorer("als", np.asarray(model.user_factors, np.float32),
                  np.asarray(model.item_factors, np.float32))


def pair_scores(scorer: Scorer, users: np.ndarray, authors: np.ndarray) -> np.ndarray:
    """``scorer.users[u] @ scorer.items[a]`` for each pair, row-wise (no full matrix)."""
    return np.einsum("ij,ij->i", scorer.users[users].astype(np.float64),
                     scorer.items[authors].astype(np.float64))
