"""The replay's baselines, trained on the same window MSPA sees, in the same run.

* **popularity**: an author's score is ``log(1 + tips)`` in the window; the same ranking for
  every user (the floor any recommender must clear).
* **als** (the paper's ID-based author embedding): ``implicit``'s alternating least squares
  on the user x author matrix of tip counts in the window. User and author factors score by
  dot product; authors compare by cosine of their factors (A2A).

Both are trained on the window's kept sessions **minus the held-out last tip of test users**
(the ground truth of Acc@m), so neither baseline has seen what it is asked to predict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from mspa_tasks.config import ReplayConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scorer:
    """Vectors whose dot products are a model's scores: ``users[i] @ items[j]``."""

    name: str
    users: np.ndarray   # (n_users, d), rows aligned with the replay's user index
    items: np.ndarray   # (n_items, d), rows aligned with the replay's author index

    def item_unit(self) -> np.ndarray:
        norms = np.linalg.norm(self.items, axis=1, keepdims=True)
        return self.items / np.where(norms > 0, norms, 1.0)


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
