"""The replay's segments (mspa_tasks.replay.segments): popularity buckets that each hold a
third of the window's attention, cold authors, and per-pair masks."""

from __future__ import annotations

import numpy as np

from mspa_tasks.days import DAY_MS
from mspa_tasks.replay.segments import (
    FAMILIES,
    cold_authors,
    pair_segments,
    popularity_buckets,
)


def test_each_popularity_bucket_starts_within_its_third_of_the_attention():
    rng = np.random.default_rng(0)
    interactions = np.floor(rng.pareto(1.2, size=500) * 10)
    buckets = popularity_buckets(interactions)
    total = interactions.sum()
    order = np.argsort(-interactions, kind="stable")
    above = (np.cumsum(interactions[order]) - interactions[order]) / total
    ranked = buckets[order]
    assert (above[ranked == "head"] < 1 / 3).all()
    assert ((above[ranked == "torso"] >= 1 / 3) & (above[ranked == "torso"] < 2 / 3)).all()
    # the head is few authors, the tail most of them; every author without interaction is tail
    assert (buckets == "head").sum() < (buckets == "torso").sum() < (buckets == "tail").sum()
    assert (buckets[interactions == 0] == "tail").all()


def test_no_interaction_at_all_puts_every_author_in_the_tail():
    assert popularity_buckets(np.zeros(4)).tolist() == ["tail"] * 4


def test_an_author_is_cold_when_new_to_the_window_by_interaction_or_by_first_live():
    end = 30 * DAY_MS
    cold = cold_authors(np.array([0, 4, 4, 4, 4]),
                        np.array([-1, 1 * DAY_MS, 28 * DAY_MS, 1 * DAY_MS, 1 * DAY_MS]), end,
                        cold_days=3,
                        since_ms=np.array([-1, -1, -1, 27 * DAY_MS, 26 * DAY_MS]))
    # none; old regular; first interaction in the last 3 days; first live in them; just before
    assert cold.tolist() == [True, False, True, True, False]


def test_pair_masks_split_every_family_exactly():
    users, authors = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    masks = pair_segments(users, authors, {(0, 1), (2, 2)},
                          np.array(["head", "torso", "tail"], dtype=object),
                          np.array([False, True, False]))
    assert masks["repeat"].tolist() == [False, True, False, True]
    assert masks["cold"].tolist() == [False, True, True, False]
    assert masks["head"].tolist() == [True, False, False, False]
    for names in FAMILIES.values():  # every pair in exactly one segment of each family
        assert (np.sum([masks[n] for n in names], axis=0) == 1).all()
    empty = pair_segments(np.array([], int), np.array([], int), set(),
                          np.array(["tail"], dtype=object), np.array([True]))
    assert all(len(mask) == 0 for mask in empty.values())
