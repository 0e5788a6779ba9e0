"""Acc@m with intervals, and the split that tells memory from preference."""

from __future__ import annotations

import pytest

from mspa_tasks.llm.ranking import Choices, accuracy_intervals, accuracy_report


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


@pytest.mark.slow
def test_the_label_scorer_ranks_a_planted_pick_first_at_every_position():
    """The packaged SmolLM2 answers with a pick it already wrote twice: the probability of
    the label after "Recommended author:" must put that candidate first whatever its position,
    in batches mixing set sizes and prompt lengths (left padding), each order a permutation."""
    from mspa_tasks.llm.hf import TextBackend
    from mspa_tasks.llm.ranking import score_choices
    from mspa_tasks.models import convert_smollm2
    from tests.conftest import DEV_MODELS_DIR

    backend = TextBackend(convert_smollm2(DEV_MODELS_DIR), batch_size=3, max_new_tokens=8,
                          repetition_penalty=1.0, one_line=False)
    rows, answers = [], []
    for m in (4, 6):
        labels = list("ABCDEF"[:m])
        for gt in range(m):
            lines = "\n".join(f"{label}: streamer {i}" + " who sings" * (gt % 3)
                              for i, label in enumerate(labels))
            rows.append({"user_id": gt, "m": m, "candidate_ids": [100 + i for i in range(m)],
                         "candidate_labels": labels, "ground_truth": 100 + gt,
                         "prompt": [{"role": "user", "content": f"Candidates:\n{lines}\nWho?"}]})
            answers.append("User Preference: x\nRecommendation Reason: y\n"
                           + f"Recommended author: {labels[gt]}\n" * 2 + "Recommended author: ?")
    orders = score_choices(backend, rows, answers)
    assert [o[0] for o in orders] == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    assert all(sorted(o) == list(range(r["m"])) for o, r in zip(orders, rows, strict=True))
    report = accuracy_report(Choices(answers, orders), rows)
    assert (report["acc@4"], report["acc@6"], report["recall5@6"]) == (1.0, 1.0, 1.0)
    # the same answers read as text: the last phrase names no candidate
    assert accuracy_report(answers, rows)["answered@4"] == 0.0


def test_a_full_order_gives_recall_and_ndcg_below_the_set_size():
    rows = [{"user_id": u, "m": 10, "candidate_ids": list(range(10)), "ground_truth": 3}
            for u in range(2)]
    orders = [[3, 0, 1, 2, 4, 5, 6, 7, 8, 9], [0, 1, 2, 4, 5, 3, 6, 7, 8, 9]]
    report = accuracy_report(Choices(["", ""], orders), rows)
    assert report["acc@10"] == 0.5 and report["answered@10"] == 1.0
    assert report["recall5@10"] == 0.5 and report["ndcg5@10"] == pytest.approx(0.5)
    assert "recall10@10" not in report  # K = m: the whole set, nothing to rank
    out = {(r["model"], r["metric"]): r["value"]
           for r in accuracy_intervals({"scored": Choices(["", ""], orders),
                                        "generated": ["", ""]}, rows, "scored", n_boot=50)}
    assert out[("scored", "recall5")] == 0.5 and ("generated", "recall5") not in out
