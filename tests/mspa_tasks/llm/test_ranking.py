"""Acc@m with intervals, and the split that tells memory from preference."""

from __future__ import annotations

import pytest

from mspa_tasks.llm.ranking import accuracy_intervals, accuracy_report


def _rows(n_users: int = 20) -> list[dict]:
    """Per user one m=4 example; even users' ground truth is in their shown history."""
    rows = []
    for u in range(n_users):
        ids = [100 + u, 200 + u, 300 + u, 400 + u]
        rows.append({"user_id": u, "m": 4, "candidate_ids": ids, "ground_truth": ids[u % 4],
                     "gt_in_history": u % 2 == 0})
    return rows


def _answer(row: dict, right: bool) -> str:
    pick = row["ground_truth"] if right else next(c for c in row["candidate_ids"]
                                                   if c != row["ground_truth"])
    return (f"User Preference: x\nRecommendation Reason: y\nRecommended author: {pick}")


def test_a_model_that_only_remembers_looks_good_on_shown_and_fails_on_unseen():
    rows = _rows()
    copier = [_answer(r, r["gt_in_history"]) for r in rows]  # right only when it can recall
    report = accuracy_report(copier, rows)
    assert report["acc@4"] == 0.5
    assert (report["acc_shown@4"], report["n_shown@4"]) == (1.0, 10)
    assert (report["acc_unseen@4"], report["n_unseen@4"]) == (0.0, 10)
    assert report["format@4"] == 1.0 and report["answered@4"] == 1.0


@pytest.mark.parametrize(("segment", "copier", "chooser", "significant"), [
    ("all", 0.5, 1.0, True),
    ("shown", 1.0, 1.0, False),     # identical on every example: no difference at all
    ("unseen", 0.0, 1.0, True),
])
def test_intervals_are_paired_per_segment(segment, copier, chooser, significant):
    rows = _rows()
    answers = {"chooser": [_answer(r, True) for r in rows],
               "copier": [_answer(r, r["gt_in_history"]) for r in rows]}
    out = {(r["model"], r["metric"], r["segment"]): r
           for r in accuracy_intervals(answers, rows, "chooser", n_boot=400)}
    ref, other = out[("chooser", "acc", segment)], out[("copier", "acc", segment)]
    assert (ref["value"], other["value"]) == (chooser, copier)
    assert ref["diff"] is None and ref["significant"] is None
    assert other["diff"] == pytest.approx(copier - chooser)
    assert other["significant"] is significant
    assert other["low"] <= other["value"] <= other["high"]
    assert other["users"] == (20 if segment == "all" else 10)
    assert other["n"] == other["users"]


def test_unanswered_and_unformatted_answers_are_counted_apart():
    rows = _rows(4)
    answers = {"m": ["Recommended author: 100", "nothing",
                     "User Preference: a\nRecommendation Reason: b\nRecommended author: 999",
                     str(rows[3]["ground_truth"])]}
    out = {(r["metric"], r["segment"]): r["value"]
           for r in accuracy_intervals(answers, rows, "m", n_boot=50)}
    # 100 is user 0's right answer; 999 is no candidate; a bare id still names one
    assert out[("acc", "all")] == 0.5
    assert out[("answered", "all")] == 0.5
    assert out[("format", "all")] == 0.25
