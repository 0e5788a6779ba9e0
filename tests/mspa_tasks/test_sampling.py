"""Stable choices from salted hashes (mspa_tasks.sampling): the same on every machine, day
and Python version, so a split, shard or sample never moves between runs."""

from __future__ import annotations

import subprocess
import sys

from mspa_tasks.sampling import stable_int, stable_positions, stable_sample
from tests.conftest import REPO


def test_the_values_are_fixed_forever():
    """SHA-256 of "<salt>:<value>": these numbers may never change (a change would reshuffle
    every user split and candidate set already published)."""
    assert stable_int("s", 42) == 9522123320051762115
    assert stable_int(None, "x") == 3274422879871479876
    assert stable_sample(range(20), 5, "salt") == [5, 7, 10, 13, 16]


def test_another_process_with_another_hash_seed_draws_the_same():
    code = ("from mspa_tasks.sampling import stable_sample; "
            "print(stable_sample([str(i) for i in range(50)], 7, 'x'))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={"PYTHONHASHSEED": seed, "PATH": ""},
                              cwd=REPO).stdout
               for seed in ("1", "2")}
    assert len(outputs) == 1 and outputs.pop().strip() == str(
        stable_sample([str(i) for i in range(50)], 7, "x"))


def test_a_larger_cap_only_adds_to_the_sample():
    items = range(200)
    small, large = stable_sample(items, 10, "u"), stable_sample(items, 40, "u")
    assert set(small) < set(large) and len(large) == 40
    assert stable_sample(items, 10, "v") != small  # another salt, another sample


def test_positions_are_a_stable_sample_of_the_ids_in_ascending_order():
    ids = [7, 3, 99, 12, 5, 40]
    positions = stable_positions(ids, 3, "p").tolist()
    assert positions == sorted(positions) and len(set(positions)) == 3
    assert stable_positions(list(ids), 3, "p").tolist() == positions
