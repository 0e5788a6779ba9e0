"""The replay's vectorised metrics against plain reference implementations, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mspa_tasks.scoring import metrics as M


def _tied_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 6, n).astype(float) / 4  # few distinct values: many ties


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    scores = _tied_scores(rng, 500)
    labels = rng.random(500) < 0.3
    assert M.auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)


def test_auc_edge_cases():
    assert np.isnan(M.auc(np.array([0.1, 0.2]), np.array([1, 1])))
    assert np.isnan(M.auc(np.array([]), np.array([])))
    assert M.auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert M.auc(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        M.auc(np.array([np.nan, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="lengths differ"):
        M.grouped_auc(np.array([1]), np.array([0.1, 0.2]), np.array([0, 1]))


@pytest.mark.parametrize("seed", range(5))
def test_uauc_matches_a_per_user_sklearn_loop(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    users = rng.integers(0, 120, n)
    scores = _tied_scores(rng, n) if seed % 2 else rng.normal(size=n)
    labels = rng.random(n) < 0.25
    per_user, sizes = [], []
    for u in np.unique(users):
        rows = users == u
        if labels[rows].all() or not labels[rows].any():
            continue  # one class only: no AUC for this user
        per_user.append(roc_auc_score(labels[rows], scores[rows]))
        sizes.append(rows.sum())
    got = M.uauc(users, scores, labels)
    assert got["users"] == len(per_user)
    assert got["uauc"] == pytest.approx(np.mean(per_user), abs=1e-9)
    assert got["uauc_weighted"] == pytest.approx(np.average(per_user, weights=sizes), abs=1e-9)


def _reference_hr(queries, items, positives, k):
    """Expected hit with ties broken at random, by counting: the request misses when every
    one of the ``room`` slots left at the best positive's score goes to a non-positive."""
    from math import comb

    hits = 0.0
    for q, pos in zip(queries, positives, strict=True):
        scores = items.astype(np.float64) @ q.astype(np.float64)
        best = max(scores[p] for p in pos)
        higher = int((scores > best).sum())
        tied = int((scores == best).sum())
        tied_pos = int(sum(scores[p] == best for p in set(pos)))
        room = k - higher
        if room <= 0:
            continue
        hits += 1.0 if room >= tied else 1 - comb(tied - tied_pos, room) / comb(tied, room)
    return hits / len(queries)


def _tied_case(seed: int, n_items: int, n_queries: int, dim: int, span: int, most: int):
    """Small integer vectors (float32 products exact, many scores tied) and, per query, 1 to
    ``most - 1`` distinct relevant items."""
    rng = np.random.default_rng(seed)
    items = rng.integers(-span, span + 1, (n_items, dim)).astype(np.float32)
    queries = rng.integers(-span, span + 1, (n_queries, dim)).astype(np.float32)
    relevant = [rng.choice(n_items, rng.integers(1, most), replace=False)
                for _ in range(n_queries)]
    return items, queries, relevant


@pytest.mark.parametrize("seed", range(4))
def test_hit_rate_matches_a_loop_ties_included(seed):
    items, queries, positives = _tied_case(seed, 300, 97, 8, 2, 5)
    ks = (1, 10, 50, 299, 300, 1000)
    got = M.hit_rate_at_k(queries, items, positives, ks, batch=16)
    for k in ks:
        assert got[k] == pytest.approx(_reference_hr(queries, items, positives, k), abs=1e-9)
    assert got[300] == got[1000] == 1.0
    small = M.hit_rate_at_k(queries, items, positives, (1, 10, 50), batch=16)  # top 50 only
    for k in (1, 10, 50):
        assert small[k] == pytest.approx(_reference_hr(queries, items, positives, k), abs=1e-9)


@pytest.mark.parametrize(("scores", "positives", "k", "expected"), [
    ([3, 2, 2, 2, 1], [1], 2, 1 / 3),       # one of three tied for one slot
    ([3, 2, 2, 2, 1], [1, 2], 2, 2 / 3),    # two of three tied for one slot
    ([3, 2, 2, 2, 1], [1, 2], 3, 1.0),      # two slots: one of the two always lands
    ([3, 2, 2, 2, 1], [4], 4, 0.0),         # four authors score above it
    ([2, 2, 2, 2, 2], [0], 1, 1 / 5),       # a constant scorer is chance, not a hit
    ([2, 2, 2, 2, 2], [0], 5, 1.0),
])
def test_hit_rate_counts_ties_by_expected_rank(scores, positives, k, expected):
    items = np.array(scores, np.float32)[:, None]
    got = M.hit_rate_at_k(np.ones((1, 1), np.float32), items, [np.array(positives)], (k,))
    assert got[k] == pytest.approx(expected, abs=1e-12)


def test_expected_ties_agree_with_random_tie_breaking():
    """The closed form against shuffling: integer popularity-like scores, 20,000 random
    tie-breaks."""
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, 40).astype(np.float32)
    positives = np.array([3, 7, 11])
    k = 9
    got = M.hit_rate_at_k(np.ones((1, 1), np.float32), scores[:, None], [positives], (k,))[k]
    trials = 20_000
    noise = rng.random((trials, len(scores)))
    order = np.lexsort((noise, -np.broadcast_to(scores, noise.shape)), axis=1)[:, :k]
    sampled = np.isin(order, positives).any(axis=1).mean()
    assert got == pytest.approx(sampled, abs=0.01)


def test_hit_rate_refuses_requests_without_positives():
    with pytest.raises(ValueError, match="at least one positive"):
        M.hit_rate_at_k(np.ones((1, 2)), np.ones((3, 2)), [np.array([], int)], (1,))


def _reference_recall_ndcg(queries, items, relevant, k):
    recalls, ndcgs = [], []
    for q, rel in zip(queries, relevant, strict=True):
        scores = items.astype(np.float64) @ q.astype(np.float64)
        recall = dcg = 0.0
        for i in rel:  # the item's rank is uniform over its tie block
            higher = int((scores > scores[i]).sum())
            block = range(higher, higher + int((scores == scores[i]).sum()))
            recall += sum(r < k for r in block) / len(block)
            dcg += sum(1 / np.log2(r + 2) for r in block if r < k) / len(block)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(rel), k)))
        recalls.append(recall / len(rel))
        ndcgs.append(dcg / idcg)
    return np.mean(recalls), np.mean(ndcgs)


@pytest.mark.parametrize("seed", range(4))
def test_recall_and_ndcg_match_a_loop_ties_included(seed):
    items, queries, relevant = _tied_case(seed, 200, 60, 6, 1, 12)
    got = M.recall_ndcg_at_k(queries, items, relevant, (5, 10), batch=7)
    for k in (5, 10):
        recall, ndcg = _reference_recall_ndcg(queries, items, relevant, k)
        assert got[f"recall@{k}"] == pytest.approx(recall, abs=1e-9)
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg, abs=1e-9)


def test_alignment_rate_counts_ties_half():
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    triples = np.array([[0, 1, 2],   # positive closer: 1
                        [0, 2, 1],   # negative closer: 0
                        [0, 2, 3]])  # tie: 1/2
    assert M.alignment_rate(v, triples) == pytest.approx(0.5)
    assert np.isnan(M.alignment_rate(v, np.zeros((0, 3), int)))
