"""The bootstrap over users against a plain loop with the same draws, and its verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mspa_tasks.scoring import uncertainty as U


def _loop_replicates(seed, n_boot, users, fn):
    """Replicates by hand: the same draws, each replicate's units gathered user by user."""
    uniq, index = np.unique(users, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), (n_boot, len(uniq)))
    return np.array([fn(np.concatenate([np.flatnonzero(index == u) for u in row]))
                     for row in draws])


def test_user_bootstrap_matches_a_loop_over_replicates():
    rng = np.random.default_rng(3)
    users = rng.integers(0, 40, 300)
    a, b = rng.random(300), rng.random(300) * 0.8
    est = U.user_bootstrap({"mspa": a, "als": b}, users, n_boot=300, seed=11)
    reps_a = _loop_replicates(11, 300, users, lambda rows: a[rows].mean())
    reps_b = _loop_replicates(11, 300, users, lambda rows: b[rows].mean())
    lo, hi = np.percentile(reps_a, [2.5, 97.5])
    assert (est["mspa"].low, est["mspa"].high) == pytest.approx((lo, hi), abs=1e-12)
    dlo, dhi = np.percentile(reps_b - reps_a, [2.5, 97.5])
    assert (est["als"].diff_low, est["als"].diff_high) == pytest.approx((dlo, dhi), abs=1e-12)
    assert est["mspa"].value == pytest.approx(a.mean()) and est["mspa"].users == 40


def test_auc_bootstrap_matches_weighted_sklearn_per_replicate():
    rng = np.random.default_rng(5)
    n = 400
    users = rng.integers(0, 30, n)
    labels = rng.random(n) < 0.3
    scores = rng.integers(0, 5, n).astype(float)  # integer scores: many ties
    est = U.auc_bootstrap({"mspa": scores}, labels, users, n_boot=50, seed=2, chunk=7)
    assert est["mspa"].value == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    reps = _loop_replicates(2, 50, users, lambda rows: roc_auc_score(labels[rows], scores[rows]))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert (est["mspa"].low, est["mspa"].high) == pytest.approx((lo, hi), abs=1e-12)


def test_a_model_the_same_as_mspa_is_never_significant_and_a_clear_winner_is():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(60), 3)
    mspa = (rng.random(180) < 0.4).astype(float)
    est = U.user_bootstrap({"mspa": mspa, "copy": mspa.copy(), "better": np.ones(180),
                            "noisy": np.roll(mspa, 1)}, users, n_boot=500, seed=1)
    assert est["copy"].diff == 0 and est["copy"].significant is False
    assert est["better"].significant is True and est["better"].diff_low > 0
    assert est["mspa"].significant is None  # the reference has no difference to itself
    assert est["mspa"].low <= est["mspa"].value <= est["mspa"].high


def test_empty_and_one_class_inputs_give_nan_not_errors():
    assert np.isnan(U.user_bootstrap({"mspa": np.zeros(0)}, np.zeros(0))["mspa"].value)
    one_class = U.auc_bootstrap({"mspa": np.ones(5)}, np.ones(5), np.arange(5))
    assert np.isnan(one_class["mspa"].value)
