"""Candidate sets: the ground truth once, never another tipped author, hard + random, stable."""

from __future__ import annotations

import numpy as np
import pytest

from mspa_tasks.align.candidates import NotEnoughAuthors, candidate_set


@pytest.fixture
def authors():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(60, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = list(range(1000, 1060))
    cats = {a: ["singing", "gaming", "cooking"][i % 3] for i, a in enumerate(ids)}
    return ids, cats, v


@pytest.mark.parametrize("m", [4, 10])
@pytest.mark.parametrize("tipped", [{1000, 1003, 1006, 1009}, {1003, 1006, 1009}],
                         ids=["tipped-holds-gt", "tipped-without-gt"])
def test_sets_hold_the_truth_once_and_no_other_tipped_author(authors, m, tipped):
    ids, cats, v = authors
    for user in range(50):
        s = candidate_set(user, 1000, tipped, ids, cats, v, m)
        assert len(s) == m == len(set(s)) and s.count(1000) == 1
        assert not (set(s) - {1000}) & tipped


def test_hard_negatives_are_the_nearest_same_category_authors(authors):
    ids, cats, v = authors
    s = candidate_set(7, 1000, {1000}, ids, cats, v, 10)
    scores = v @ v[0]
    same = [a for a in ids[1:] if cats[a] == "singing"]
    nearest_same = sorted(same, key=lambda a: -scores[ids.index(a)])[:4]  # (10 - 1) // 2
    assert set(nearest_same) <= set(s)


def test_sets_are_stable_and_differ_between_users(authors):
    ids, cats, v = authors
    a = candidate_set(1, 1000, {1000}, ids, cats, v, 10)
    assert a == candidate_set(1, 1000, {1000}, ids, cats, v, 10)
    others = [candidate_set(u, 1000, {1000}, ids, cats, v, 10) for u in range(2, 12)]
    assert any(o != a for o in others)
    assert len({o.index(1000) for o in others}) > 1  # the truth is not always in one slot


def test_too_few_authors_is_a_clear_error(authors):
    ids, cats, v = authors
    with pytest.raises(NotEnoughAuthors, match="need 9"):
        candidate_set(1, 1000, set(ids[:55]), ids, cats, v, 10)


def _pool(authors):
    from mspa_tasks.align.candidates import CandidatePool

    ids, cats, v = authors
    return CandidatePool(ids, cats, v)


def test_live_negatives_are_drawn_among_the_authors_live_at_the_tip(authors):
    """The paper's protocol: every negative was live; no nearest-neighbour pick."""
    ids, _, v = authors
    live = np.array(ids[30:], dtype=np.int64)  # the truth (1000) itself is offline here
    pool = _pool(authors)
    picks = [pool.draw(u, 1000, {1000, 1031}, 10, negatives="live", live=live)
             for u in range(40)]
    for s in picks:
        assert s.count(1000) == 1 and set(s) - {1000} <= set(ids[30:]) - {1031}
    # random among the live ones: over many users, the negatives are not the truth's nearest
    nearest = set(np.array(ids)[np.argsort(-(v @ v[0]))[1:5]].tolist())
    assert len({a for s in picks for a in s} - {1000}) > 20 and not all(
        nearest & set(s) == nearest for s in picks)
    positions = [s.index(1000) for s in picks]
    assert len(set(positions)) >= 6  # the truth's slot is spread over the set


def test_without_live_status_the_live_protocol_draws_among_all_authors(authors):
    ids, _, _ = authors
    drawn = {a for u in range(60) for a in _pool(authors).draw(u, 1000, {1000}, 10,
                                                                 negatives="live")}
    assert len(drawn - {1000}) > 40


def test_too_few_live_authors_is_a_clear_error(authors):
    ids, _, _ = authors
    with pytest.raises(NotEnoughAuthors, match="3 eligible negatives, need 9"):
        _pool(authors).draw(1, 1000, {1000}, 10, negatives="live",
                            live=np.array(ids[:4], dtype=np.int64))
