"""Alignment examples built from a real published day: ground truth, negatives, no leak."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from mspa_tasks.align.examples import (
    DATASET,
    ExamplesMissing,
    build_examples,
    read_examples,
    split_last_tip,
)
from mspa_tasks.align.rewards import format_reward
from mspa_tasks.datasets import AUTHOR_VECTORS, read_vectors
from mspa_tasks.days import window_for
from mspa_tasks.llm.answers import parse_recommended
from mspa_tasks.llm.content import load_author_content
from mspa_tasks.llm.prompting import render_user
from mspa_tasks.publish import read_table

from .conftest import DS


@pytest.mark.parametrize(("events", "expected"), [
    ([(0, 5), (1, 6), (2, 7)], (7, [(6, 1), (5, 1)])),
    ([(0, 5), (1, 5), (2, 5)], (5, [(5, 2)])),           # gt tipped before: stays, count - 1
    ([(2, 7), (0, 5), (1, 6)], (7, [(6, 1), (5, 1)])),   # order by seq, not by list position
    ([(0, 5), (1, 6), (2, 5), (3, 6)], (6, [(5, 2), (6, 1)])),
])
def test_split_last_tip(events, expected):
    assert split_last_tip(events) == expected


def _sessions(store):
    t = read_table(store, "sessions", DS, "sessions").to_pylist()
    by_user = defaultdict(list)
    for r in t:
        by_user[r["user_id"]].append(r)
    return by_user


def test_each_example_holds_the_last_tipped_author_once_and_no_other_tipped_author(day):
    url, store, settings = day
    build_examples(DS, url, store, settings)
    sessions = _sessions(store)
    split = dict(zip(*(read_table(store, "sessions", DS, "user_split").column(c).to_pylist()
                       for c in ("user_id", "split")), strict=True))
    ids, vectors = read_vectors(store, AUTHOR_VECTORS, DS)
    row_of = {a: i for i, a in enumerate(ids.column("author_id").to_pylist())}
    rows = read_table(store, DATASET, DS, "examples").to_pylist()
    assert {r["m"] for r in rows} == {4, 10}
    for r in rows:
        events = sessions[r["user_id"]]
        (gt,) = [e["author_id"] for e in events if e["is_ground_truth"]]
        assert r["ground_truth"] == gt and r["split"] == split[r["user_id"]]
        assert len(r["candidate_ids"]) == r["m"] == len(set(r["candidate_ids"]))
        assert r["candidate_ids"].count(gt) == 1
        others = {e["author_id"] for e in events} - {gt}
        assert not others & set(r["candidate_ids"]), "a tipped author is not a negative"
        np.testing.assert_allclose(r["candidate_vectors"],
                                   vectors[[row_of[a] for a in r["candidate_ids"]]], atol=1e-7)
        user_msg = r["prompt"][-1]["content"]
        assert all(f"\n{a}: " in user_msg for a in r["candidate_ids"])
        # the SFT target: the exact format, read by the one shared parser as the ground truth
        assert format_reward([r["target"]]) == [1.0]
        assert parse_recommended(r["target"], r["candidate_ids"]) == gt


def test_a_candidate_line_shows_its_tips_without_any_held_out_tip(day):
    """The tips count in a candidate line is the window's tips minus every example's label
    (each kept user's last tip): the ground truth's own held-out tip never raises it."""
    import re

    url, store, settings = day
    build_examples(DS, url, store, settings)
    sessions = read_table(store, "sessions", DS, "sessions").to_pylist()
    kept = Counter(e["author_id"] for e in sessions if not e["is_ground_truth"])
    every = Counter(e["author_id"] for e in sessions)
    seen = differs = 0
    for r in read_table(store, DATASET, DS, "examples").to_pylist():
        block = r["prompt"][-1]["content"].split("<data>\n")[2]
        for a in r["candidate_ids"]:
            line = re.search(rf"^{a}: [^\n]*", block, re.MULTILINE).group(0)
            shown = int(re.search(r"; (\d+) tips? in 30 days", line).group(1))
            assert shown == kept[a], (a, shown, kept[a])
            seen += 1
            differs += kept[a] != every[a]
        # the target's reason names the same count as the ground truth's line
        assert f"with {kept[r['ground_truth']]} tip" in r["target"]
    assert seen and differs  # some author's count would have included a label


def test_the_prompt_shows_the_history_without_the_last_tip(day):
    url, store, settings = day
    build_examples(DS, url, store, settings)
    sessions = _sessions(store)
    rows = [r for r in read_table(store, DATASET, DS, "examples").to_pylist() if r["m"] == 4]
    content, _ = load_author_content(url, {e["author_id"] for ev in sessions.values()
                                           for e in ev}, window_for(DS, 30).end_ms)
    differs = in_history = 0
    for r in rows:
        events = sorted(sessions[r["user_id"]], key=lambda e: e["seq"])
        _, history = split_last_tip([(e["seq"], e["author_id"]) for e in events])
        full = split_last_tip([(e["seq"], e["author_id"]) for e in events]
                              + [(10**9, -1)])[1]  # every real event in the history
        budget, floor = settings.align.history_chars, settings.compose.min_author_chars
        rendered = render_user(r["user_id"], history, content, budget, floor, "a", "b")
        shown = rendered.data
        leaked = render_user(r["user_id"], full, content, budget, floor, "a", "b").data
        assert f"<data>\n{shown}\n</data>" in r["prompt"][-1]["content"]
        differs += shown != leaked
        # memory vs preference: flagged when the ground truth is among the authors shown
        assert r["gt_in_history"] == (r["ground_truth"] in rendered.authors_in)
        in_history += r["gt_in_history"]
    assert differs == len(rows)  # the held-out tip always changes what the model sees
    assert 0 < in_history < len(rows)  # the world has both kinds of example


def test_splits_are_capped_and_rerun_is_byte_identical(day):
    url, store, settings = day
    first = build_examples(DS, url, store, settings).manifest
    users = first["counts"]["users"]
    assert users["train"] == 20 and users["val"] == min(6, first["counts"]["users_available"]["val"])
    assert users["test"] == first["counts"]["users_available"]["test"]
    again = build_examples(DS, url, store, settings).manifest
    assert again["files"] == first["files"]  # same bytes, same sha256
    train = {r["user_id"] for r in read_examples(store, DS, "train", (4, 10))}
    val = {r["user_id"] for r in read_examples(store, DS, "val", (4, 10))}
    assert len(train) == 20 and not train & val


def test_a_missing_input_is_named(tmp_path, settings):
    from mspa_tasks.artifacts import open_store

    store = open_store(f"file://{tmp_path / 'empty'}")
    with pytest.raises(ExamplesMissing, match="sessions/ds=2026-11-20 is not published"):
        build_examples(DS, f"sqlite:///{tmp_path / 'w.db'}", store, settings)
