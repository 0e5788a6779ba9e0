"""The replay's scorers (mspa_tasks.scoring.baselines): popularity, the interaction matrix
ALS learns from, and the fused score served as one dot product."""

from __future__ import annotations

import numpy as np
import pytest

from mspa_tasks.scoring.baselines import (
    Scorer,
    fuse,
    interaction_matrix,
    pair_scores,
    popularity,
    score_spread,
)


def _scorer(name: str, n_users: int, n_items: int, dim: int, seed: int) -> Scorer:
    rng = np.random.default_rng(seed)
    return Scorer(name, rng.normal(size=(n_users, dim)), rng.normal(size=(n_items, dim)))


def test_the_fused_score_is_the_weighted_sum_of_each_models_score_over_its_spread():
    mspa, ids = _scorer("mspa", 30, 40, 8, 0), _scorer("als", 30, 40, 5, 1)
    users = np.repeat(np.arange(30), 40)
    authors = np.tile(np.arange(40), 30)
    for w in (0.0, 0.3, 1.0):
        fused = fuse(mspa, ids, w)
        expected = (w * pair_scores(mspa, users, authors) / score_spread(mspa)
                    + (1 - w) * pair_scores(ids, users, authors) / score_spread(ids))
        assert np.allclose(pair_scores(fused, users, authors), expected, atol=1e-4)
        assert fused.items.shape == (40, 13)  # one vector field: [v_mspa, v_als]


def test_an_author_without_interactions_is_scored_by_mspa_alone():
    mspa, ids = _scorer("mspa", 5, 3, 4, 2), _scorer("als", 5, 3, 2, 3)
    ids.items[2] = 0.0  # ALS's factors of an author nobody tipped
    fused = fuse(mspa, ids, 0.4)
    only_mspa = 0.4 * pair_scores(mspa, np.arange(5), np.full(5, 2)) / score_spread(mspa)
    assert np.allclose(pair_scores(fused, np.arange(5), np.full(5, 2)), only_mspa, atol=1e-5)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_a_fusion_weight_outside_0_1_is_refused(weight):
    mspa = _scorer("mspa", 2, 2, 2, 4)
    with pytest.raises(ValueError, match=f"fusion weight {weight} is not in"):
        fuse(mspa, mspa, weight)


def test_a_scorer_whose_scores_do_not_vary_has_spread_one():
    flat = Scorer("flat", np.ones((4, 1)), np.ones((6, 1)))
    assert score_spread(flat) == 1.0
    assert score_spread(Scorer("empty", np.ones((0, 1)), np.ones((0, 1)))) == 1.0


def test_popularity_ranks_every_user_alike_by_tips_in_the_window():
    tips_of = {0: 5, 1: 0, 2: 9, 3: 1}
    items = np.array([a for a, n in tips_of.items() for _ in range(n)])
    users = np.arange(len(items)) % 3
    scorer = popularity(users, items, 3, 4)
    scores = scorer.users @ scorer.items.T
    assert all(list(np.argsort(-row)) == [2, 0, 3, 1] for row in scores)
    assert np.allclose(scores[0], np.log1p([5, 0, 9, 1]))


def test_the_interaction_matrix_counts_repeated_pairs():
    matrix = interaction_matrix(np.array([0, 0, 1, 0]), np.array([2, 2, 0, 1]), 2, 3)
    assert matrix.toarray().tolist() == [[0, 1, 2], [1, 0, 0]]
