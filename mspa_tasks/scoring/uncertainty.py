"""Confidence intervals for the replay's metrics: a bootstrap over users, seeded and
vectorised (one weight matrix per metric, no Python loop over replicates).

Users are the unit of resampling: a user's requests, impressions and relevant authors move
together, so intervals are honest about how few users a day has, however many requests they
make. Every model is resampled with the *same* draws (a paired bootstrap), so the interval of
the difference ``model - mspa`` is much tighter than the two intervals side by side suggest;
a difference is *significant* when its interval excludes 0.

* :func:`user_bootstrap` — a metric that is a mean of per-unit values (HR@K per request,
  Recall/NDCG per user, a user's AUC for UAUC, Acc@m per example), grouped by user;
* :func:`auc_bootstrap` — the global (impression-level) AUC, as a weighted Mann-Whitney
  statistic per replicate (ties one half).

>>> import numpy as np
>>> users = np.array([0, 0, 1, 2, 3, 3])
>>> est = user_bootstrap({"mspa": np.array([1., 1, 0, 1, 0, 0]),
...                       "als": np.array([0., 0, 0, 1, 0, 0])}, users, n_boot=200, seed=0)
>>> round(est["mspa"].value, 3), round(est["als"].diff, 3)
(0.5, -0.333)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

REFERENCE = "mspa"
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A metric of one model with its interval, and its paired difference against the
    reference model (``None`` for the reference itself)."""

    value: float
    low: float
    high: float
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    users: int = 0

    @property
    def significant(self) -> bool | None:
        """Whether the paired interval of ``model - reference`` excludes 0."""
        if self.diff_low is None or self.diff_high is None:
            return None
        return bool(self.diff_low > 0 or self.diff_high < 0)

    def as_dict(self) -> dict:
        """The fields for a JSON report: a value that could not be computed is None."""
        clean = {k: None if isinstance(v, float) and not np.isfinite(v) else v
                 for k, v in asdict(self).items()}
        return {**clean, "significant": self.significant}


def _draws(n_users: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_users)`` counts: how often each user is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_users, (n_boot, n_users))
    flat = (draws + np.arange(n_boot)[:, None] * n_users).ravel()
    return np.bincount(flat, minlength=n_boot * n_users).reshape(n_boot, n_users).astype(float)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _estimates(point: dict[str, float], reps: dict[str, np.ndarray], n_users: int,
               reference: str, level: float) -> dict[str, Estimate]:
    out = {}
    for name, r in reps.items():
        low, high = _interval(r, level)
        if name == reference or reference not in reps:
            out[name] = Estimate(point[name], low, high, users=n_users)
            continue
        d_low, d_high = _interval(r - reps[reference], level)
        out[name] = Estimate(point[name], low, high, point[name] - point[reference],
                             d_low, d_high, n_users)
    return out


def user_bootstrap(values: dict[str, np.ndarray], users: np.ndarray, n_boot: int = 1000,
                   seed: int = 0, reference: str = REFERENCE,
                   level: float = LEVEL) -> dict[str, Estimate]:
    """Mean of per-unit ``values[model]`` (aligned with ``users``, the unit's user) with a
    bootstrap interval over users and the paired difference against ``reference``."""
    users = np.asarray(users)
    if not len(users):
        nan = float("nan")
        return {m: Estimate(nan, nan, nan) for m in values}
    _, user_index = np.unique(users, return_inverse=True)
    n_users = int(user_index.max()) + 1
    units = np.bincount(user_index, minlength=n_users).astype(float)
    counts = _draws(n_users, n_boot, seed)
    denominator = counts @ units
    point, reps = {}, {}
    for name, v in values.items():
        v = np.asarray(v, dtype=float)
        sums = np.bincount(user_index, weights=v, minlength=n_users)
        point[name] = float(v.mean())
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[name] = (counts @ sums) / denominator
    return _estimates(point, reps, n_users, reference, level)


def _weighted_auc(order_groups: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC per row of ``weights`` (replicates x impressions), impressions already sorted by
    score ascending with ``order_groups`` the tie group of each (ties count one half)."""
    pos_w = weights * labels
    neg_w = weights * ~labels
    starts = np.flatnonzero(np.r_[True, order_groups[1:] != order_groups[:-1]])
    pos_g = np.add.reduceat(pos_w, starts, axis=1)
    neg_g = np.add.reduceat(neg_w, starts, axis=1)
    below = np.cumsum(neg_g, axis=1) - neg_g
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos_g * (below + 0.5 * neg_g)).sum(1) / (pos_g.sum(1) * neg_g.sum(1))


def auc_bootstrap(scores: dict[str, np.ndarray], labels: np.ndarray, users: np.ndarray,
                  n_boot: int = 1000, seed: int = 0, reference: str = REFERENCE,
                  level: float = LEVEL, chunk: int = 100) -> dict[str, Estimate]:
    """Global AUC of each model's ``scores`` on the same impressions (``labels``, their
    ``users``), with a bootstrap interval over users and the paired difference."""
    labels = np.asarray(labels).astype(bool)
    users = np.asarray(users)
    if not len(users) or labels.all() or not labels.any():
        nan = float("nan")
        return {m: Estimate(nan, nan, nan) for m in scores}
    _, user_index = np.unique(users, return_inverse=True)
    n_users = int(user_index.max()) + 1
    counts = _draws(n_users, n_boot, seed)
    point, reps = {}, {}
    for name, s in scores.items():
        s = np.asarray(s, dtype=float)
        order = np.argsort(s, kind="stable")
        sorted_s = s[order]
        groups = np.cumsum(np.r_[True, sorted_s[1:] != sorted_s[:-1]]) - 1
        lab = labels[order]
        point[name] = float(_weighted_auc(groups, lab, np.ones((1, len(s))))[0])
        parts = [_weighted_auc(groups, lab, counts[i:i + chunk][:, user_index[order]])
                 for i in range(0, n_boot, chunk)]
        reps[name] = np.concatenate(parts)
    return _estimates(point, reps, n_users, reference, level)
