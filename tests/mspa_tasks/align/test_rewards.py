"""Rewards and the recommendation parser, table-driven with exact expected values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mspa_tasks.align.rewards import (
    accuracy_reward,
    format_reward,
    reward_functions,
    similarity_reward,
)
from mspa_tasks.llm.answers import has_format, parse_recommended

IDS = [101, 202, 303, 404]
FULL = ("User Preference: likes calm singers. Recommendation Reason: bedroom studio, "
        "ballads. Recommended author: 303")


@pytest.mark.parametrize(("text", "expected"), [
    ("Recommended author: 303", 303),
    ("recommended author: 303.", 303),
    ("RECOMMENDED AUTHOR - #202!", 202),
    ("Recommended   author => author 404 (the gamer)", 404),
    ("Recommended author: [101]", 101),
    ("Recommended author: 999, then 202", 202),          # first *candidate* after the phrase
    ("I like 202. Recommended author: 101", 101),        # ids before the phrase don't count
    ("Recommended author: 202. ... Recommended author: 303", 303),  # the last phrase wins
    ("Recommended author: 3030", None),                  # no partial-number match
    ("Recommended author: none of them", None),
    ("The best is 303", 303),                            # no phrase: the one candidate named
    ("This streamer (303) beats 303's rival", 303),      # named twice, still one candidate
    ("303 or 202, hard to say", None),                   # no phrase, two candidates: none
    ("The best is 3031 in 2026", None),                  # no phrase, no candidate
    ("", None),
])
def test_parse_recommended(text, expected):
    assert parse_recommended(text, IDS) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (FULL, True),
    (FULL.lower(), True),
    ("Recommendation Reason: x. User Preference: y. Recommended author: 1", False),
    ("User Preference: x. Recommended author: 1", False),
    ("", False),
])
def test_has_format(text, expected):
    assert has_format(text) is expected


def test_accuracy_and_format_rewards_exact_values():
    completions = [FULL, "Recommended author: 101", [{"role": "assistant", "content": FULL}],
                   "no idea"]
    kwargs = {"candidate_ids": [IDS] * 4, "ground_truth": [303, 303, 303, 303]}
    assert accuracy_reward(completions, **kwargs) == [1.0, 0.0, 1.0, 0.0]
    assert format_reward(completions, **kwargs) == [1.0, 0.0, 1.0, 0.0]


def test_similarity_reward_exact_values():
    s = math.sqrt(0.5)
    vectors = [[1.0, 0.0], [s, s], [0.0, 1.0], [-1.0, 0.0]]
    completions = ["Recommended author: 101", "Recommended author: 202",
                   "Recommended author: 303", "Recommended author: 404", "nothing"]
    got = similarity_reward(completions, candidate_ids=[IDS] * 5, ground_truth=[101] * 5,
                            candidate_vectors=[vectors] * 5)
    assert got == pytest.approx([1.0, s, 0.0, 0.0, 0.0], abs=1e-12)  # 404 is cos -1 -> 0


def test_registry_names_are_metric_keys_and_unknown_names_fail():
    funcs = reward_functions(["accuracy", "format", "similarity"])
    assert [f.__name__ for f in funcs] == ["accuracy_reward", "format_reward",
                                           "similarity_reward"]
    with pytest.raises(ValueError, match="unknown reward"):
        reward_functions(["accuracy", "length"])


def test_the_rank_reward_spreads_a_set_of_near_neighbours_that_the_cosine_does_not():
    """Hard negatives sit at cosine 0.95-0.99 of the truth: the similarity reward pays a wrong
    pick almost what it pays the right one; the rank reward spreads the set over [0, 1]."""
    from mspa_tasks.align.rewards import reward_if_picked

    rng = np.random.default_rng(0)
    truth = rng.normal(size=16)
    truth /= np.linalg.norm(truth)
    vectors = [truth]
    for target in (0.99, 0.98, 0.97, 0.96, 0.95):
        noise = rng.normal(size=16)
        noise -= (noise @ truth) * truth
        noise /= np.linalg.norm(noise)
        vectors.append(target * truth + np.sqrt(1 - target**2) * noise)
    row = {"candidate_ids": list(range(6)), "ground_truth": 0,
           "candidate_labels": list("ABCDEF"), "candidate_vectors": [v.tolist() for v in vectors]}
    cosine, rank = reward_if_picked("similarity", row), reward_if_picked("similarity_rank", row)
    assert cosine[0] == rank[0] == 1.0
    assert max(cosine[1:]) - min(cosine[1:]) < 0.05 and min(cosine[1:]) > 0.94
    assert rank[1:] == [0.8, 0.6, 0.4, 0.2, 0.0]


def test_an_unknown_reward_is_refused_by_the_config():
    from mspa_tasks.config import AlignConfig, ConfigError

    with pytest.raises(ConfigError, match="align.grpo.rewards.2='similarity_rnak' is invalid"):
        AlignConfig(grpo={"rewards": ["accuracy", "format", "similarity_rnak"]})
