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
from mspa_tasks.llm.prompting import clean, render_user
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


def test_each_example_holds_its_labelled_author_once_and_no_other_tipped_author(day):
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
        (label,) = [e for e in events if e["seq"] == r["tip_seq"]]
        gt = label["author_id"]
        assert r["ground_truth"] == gt and r["split"] == split[r["user_id"]]
        # the replay's test examples: the last tip only; train/val: any tip after the third
        assert label["is_ground_truth"] if r["split"] == "test" else r["tip_seq"] >= 3
        assert len(r["candidate_ids"]) == r["m"] == len(set(r["candidate_ids"]))
        assert r["candidate_ids"].count(gt) == 1
        others = {e["author_id"] for e in events} - {gt}
        assert not others & set(r["candidate_ids"]), "a tipped author is not a negative"
        np.testing.assert_allclose(r["candidate_vectors"],
                                   vectors[[row_of[a] for a in r["candidate_ids"]]], atol=1e-7)
        # candidates by letter, in prompt order: A, B, C, ...
        user_msg = r["prompt"][-1]["content"]
        assert r["candidate_labels"] == list("ABCDEFGHIJ"[:r["m"]])
        assert all(f"\n{label}: " in user_msg for label in r["candidate_labels"])
        # the SFT target: the exact format, read by the one shared parser as the ground truth
        assert format_reward([r["target"]]) == [1.0]
        assert r["target"].endswith(f"Recommended author: "
                                    f"{r['candidate_labels'][r['candidate_ids'].index(gt)]}")
        assert parse_recommended(r["target"], r["candidate_ids"], r["candidate_labels"]) == gt


def _candidate_tips(r):
    """``{author: tips shown}`` from an example's candidate lines."""
    import re

    block = r["prompt"][-1]["content"].split("<data>\n")[2]
    out = {}
    for a, label in zip(r["candidate_ids"], r["candidate_labels"], strict=True):
        line = re.search(rf"^{label}: [^\n]*", block, re.MULTILINE).group(0)
        out[a] = int(re.search(r"[;|] (\d+) tips? in 30 days", line).group(1))
    return out


def test_a_test_candidate_line_shows_its_tips_without_any_held_out_tip(day):
    """A test example's tips count in a candidate line is the window's tips minus every test
    label (each kept user's last tip): the ground truth's own held-out tip never raises it."""
    url, store, settings = day
    build_examples(DS, url, store, settings)
    sessions = read_table(store, "sessions", DS, "sessions").to_pylist()
    kept = Counter(e["author_id"] for e in sessions if not e["is_ground_truth"])
    every = Counter(e["author_id"] for e in sessions)
    seen = differs = 0
    for r in read_table(store, DATASET, DS, "examples").to_pylist():
        if r["split"] != "test":
            continue
        for a, shown in _candidate_tips(r).items():
            assert shown == kept[a], (a, shown, kept[a])
            seen += 1
            differs += kept[a] != every[a]
        # the target's reason names the same count as the ground truth's line
        assert f"with {kept[r['ground_truth']]} tip" in r["target"]
    assert seen and differs  # some author's count would have included a label


def test_no_train_or_validation_example_sees_its_label_or_anything_after_it(day):
    """The leakage test of per-tip examples: the history is the tips before the labelled one,
    every candidate's tips are counted before it (the label's own tip and any later tip of
    anyone never raise a count), and the target names only what the prompt shows."""
    url, store, settings = day
    build_examples(DS, url, store, settings)
    sessions = _sessions(store)
    every = [e for ev in sessions.values() for e in ev]
    rows = [r for r in read_table(store, DATASET, DS, "examples").to_pylist()
            if r["split"] in ("train", "val")]
    assert len({r["user_id"] for r in rows}) < len(rows) // 2  # several tips per user
    content, _ = load_author_content(url, {e["author_id"] for e in every},
                                     window_for(DS, 30).end_ms)
    later_tips_excluded = 0
    for r in rows:
        events = sorted(sessions[r["user_id"]], key=lambda e: e["seq"])
        (label,) = [e for e in events if e["seq"] == r["tip_seq"]]
        before = [(e["seq"], e["author_id"]) for e in events if e["seq"] < label["seq"]]
        _, history = split_last_tip(before + [(label["seq"], label["author_id"])])
        shown = render_user(r["user_id"], history, content, settings.align.examples.history_chars,
                            settings.compose.min_author_chars, "a", "b").data
        assert f"<data>\n{shown}\n</data>" in r["prompt"][-1]["content"]
        for a, n in _candidate_tips(r).items():
            assert n == sum(e["author_id"] == a and e["ts"] < label["ts"] for e in every), a
            later_tips_excluded += n < sum(e["author_id"] == a for e in every)
        assert f"with {_candidate_tips(r)[label['author_id']]} tip" in r["target"]
        assert r["gt_tipped_before"] == any(a == label["author_id"] for _, a in before)
    assert later_tips_excluded  # the world has later tips a leaky count would have shown


def test_the_prompt_shows_the_history_without_the_last_tip(day):
    url, store, settings = day
    build_examples(DS, url, store, settings)
    sessions = _sessions(store)
    rows = [r for r in read_table(store, DATASET, DS, "examples").to_pylist()
            if r["m"] == 4 and r["split"] == "test"]
    content, _ = load_author_content(url, {e["author_id"] for ev in sessions.values()
                                           for e in ev}, window_for(DS, 30).end_ms)
    differs = in_history = 0
    for r in rows:
        events = sorted(sessions[r["user_id"]], key=lambda e: e["seq"])
        _, history = split_last_tip([(e["seq"], e["author_id"]) for e in events])
        full = split_last_tip([(e["seq"], e["author_id"]) for e in events]
                              + [(10**9, -1)])[1]  # every real event in the history
        budget, floor = settings.align.examples.history_chars, settings.compose.min_author_chars
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
    # the first published day: nothing earlier to shortlist the two-stage examples from
    assert first["rerank"]["shortlist_day"] is None and not read_examples(
        store, DS, "rerank", (settings.align.examples.rerank_m,))
    users = first["counts"]["users"]
    assert users["train"] == 20 and users["val"] == min(6, first["counts"]["users_available"]["val"])
    assert users["test"] == first["counts"]["users_available"]["test"]
    again = build_examples(DS, url, store, settings).manifest
    assert again["files"] == first["files"]  # same bytes, same sha256
    sessions = _sessions(store)
    train_rows = read_examples(store, DS, "train", (4,))
    train = {r["user_id"] for r in train_rows}
    val = {r["user_id"] for r in read_examples(store, DS, "val", (4, 10))}
    assert len(train) <= 20 and not train & val
    # one example per tip after the third, for every capped train user with more than three
    per_user = Counter(r["user_id"] for r in train_rows)
    assert per_user == {u: len(sessions[u]) - 3 for u in per_user}
    assert sum(per_user.values()) == first["counts"]["examples"]["train"]["4"] > len(train)


def test_a_missing_input_is_named(tmp_path, settings):
    from mspa_tasks.artifacts import open_store

    store = open_store(f"file://{tmp_path / 'empty'}")
    with pytest.raises(ExamplesMissing, match="sessions/ds=2026-11-20 is not published"):
        build_examples(DS, f"sqlite:///{tmp_path / 'w.db'}", store, settings)


def test_live_negatives_were_live_at_the_labelled_tip_and_hard_ones_need_not_be(day):
    """[align.examples] negatives = "live" (the default, the paper's protocol): each negative
    has a room open at the labelled tip. Half the authors are taken offline here; the hard
    protocol still draws them (it does not ask who is live)."""
    import sqlalchemy as sa

    url, store, settings = day
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM live_rooms WHERE author_id % 2 = 1"))
    engine.dispose()
    live = build_examples(DS, url, store, settings).manifest
    rows = read_table(store, DATASET, DS, "examples").to_pylist()
    assert live["negatives"] == "live" and rows
    assert all(a % 2 == 0 for r in rows for a in r["candidate_ids"] if a != r["ground_truth"])
    hard = build_examples(DS, url, store, settings.with_align(
        examples={"negatives": "hard"})).manifest
    rows = read_table(store, DATASET, DS, "examples").to_pylist()
    assert hard["negatives"] == "hard"
    assert any(a % 2 for r in rows for a in r["candidate_ids"] if a != r["ground_truth"])


def test_a_structured_candidate_line_keeps_type_and_mood_that_a_cut_text_line_loses(day):
    """[align.examples] candidate_format = "structured" (default): every candidate line carries
    its tips and, where the feature text answers it, its mood, in fewer characters than the
    text line cut at candidate_chars, which drops the mood."""
    import re

    url, store, settings = day

    def lines(fmt):
        build_examples(DS, url, store, settings.with_align(examples={"candidate_format": fmt}))
        rows = read_table(store, DATASET, DS, "examples").to_pylist()
        return [line for r in rows for line in r["prompt"][-1]["content"].split("<data>\n")[2]
                .split("\n</data>")[0].splitlines()]

    structured, text = lines("structured"), lines("text")
    assert len(structured) == len(text) > 50
    assert all(re.search(r" \| \d+ tips? in 30 days", line) for line in structured)
    moods = sum(" | mood: " in line for line in structured)
    assert moods > 0.9 * len(structured)
    assert sum("Atmosphere and style: " in line for line in text) < 0.5 * moods
    assert np.mean([len(x) for x in structured]) < np.mean([len(x) for x in text])


def test_the_preference_text_side_shows_the_text_of_the_day_before_the_labelled_tip(day, encoder):
    """[align.examples] user_side = "preference_text" (the paper's input): a tip on DS gets
    the user's text of the window ending D0, which never saw DS; a tip whose day before has no
    published text is skipped and counted, never shown a later text."""
    from mspa_tasks.datasets import PREFERENCE_TEXTS
    from tests.mspa_tasks.align.conftest import D0, publish_day

    url, store, settings = day
    publish_day(D0, url, store, settings, encoder)
    texts = {r["user_id"]: r["text"] for r in PREFERENCE_TEXTS.read(store, D0, "texts")
             .to_pylist() if r["status"] == "ok"}
    manifest = build_examples(DS, url, store, settings.with_align(
        examples={"user_side": "preference_text"})).manifest
    assert manifest["counts"]["skipped"]["no_preference_text_the_day_before"] > 0
    rows = read_table(store, DATASET, DS, "examples").to_pylist()
    sessions = _sessions(store)
    ds_start = window_for(DS, 1).start_ms
    assert rows and manifest["user_side"] == "preference_text"
    for r in rows:
        (label,) = [e for e in sessions[r["user_id"]] if e["seq"] == r["tip_seq"]]
        assert label["ts"] >= ds_start  # only DS's tips have a text of the day before
        user_block = r["prompt"][-1]["content"].split("<data>\n")[1].split("\n</data>")[0]
        assert user_block == clean(texts[r["user_id"]], settings.align.examples.history_chars)
        assert "preferences, written from their tips up to the day before" in \
            r["prompt"][-1]["content"]


def test_two_stage_examples_hold_mspas_top_m_by_the_vectors_of_the_day_before(days):
    """split "rerank": each test user whose held-out tip is on DS gets MSPA's top rerank_m
    authors by D0's user and author vectors (which never saw DS), in MSPA's order, with the
    prompt of that user's test examples; the truth may be missing from it."""
    from mspa_tasks.datasets import USER_VECTORS

    from .conftest import D0

    url, store, settings = days
    manifest = build_examples(DS, url, store, settings).manifest
    m = settings.align.examples.rerank_m
    rows = read_examples(store, DS, "rerank", (m,))
    tests = {r["user_id"]: r for r in read_examples(store, DS, "test", (4,))}
    a_table, a_vectors = read_vectors(store, AUTHOR_VECTORS, D0)
    u_table, u_vectors = read_vectors(store, USER_VECTORS, D0)
    on_ds = set(read_vectors(store, AUTHOR_VECTORS, DS)[0].column("author_id").to_pylist())
    a_ids = a_table.column("author_id").to_pylist()
    keep = [i for i, a in enumerate(a_ids) if a in on_ds]
    user_vector = dict(zip(u_table.column("user_id").to_pylist(), u_vectors, strict=True))
    sessions = _sessions(store)
    ds_start = window_for(DS, 1).start_ms

    def tip_ts(r):
        return next(e["ts"] for e in sessions[r["user_id"]] if e["seq"] == r["tip_seq"])

    assert manifest["rerank"]["shortlist_day"] == D0
    assert {r["user_id"] for r in rows} == {
        u for u, r in tests.items() if tip_ts(r) >= ds_start and u in user_vector} != set()
    for r in rows:
        scores = a_vectors[keep] @ user_vector[r["user_id"]]
        assert r["candidate_ids"] == [a_ids[keep[i]] for i in
                                      np.argsort(-scores, kind="stable")[:m]]
        test = tests[r["user_id"]]
        assert (r["tip_seq"], r["ground_truth"]) == (test["tip_seq"], test["ground_truth"])
        assert r["prompt"][-1]["content"].split("Candidates")[0] == \
            test["prompt"][-1]["content"].split("Candidates")[0]
        assert (r["target"] != "") == (r["ground_truth"] in r["candidate_ids"])
    assert manifest["rerank"]["in_shortlist"] == sum(
        r["ground_truth"] in r["candidate_ids"] for r in rows)
