"""bench/retrain's tables and step gains (the bench itself trains for ~45 minutes; its
pieces that turn answers into the published tables are checked here)."""

from __future__ import annotations

import doctest

from tests.bench.loader import load_bench


def _bench():
    return load_bench("retrain")


def test_doctests():
    assert doctest.testmod(_bench()).failed == 0


def test_tables_show_every_model_with_intervals_and_verdicts_against_the_paper_recipe():
    from mspa_tasks.llm.ranking import accuracy_intervals

    bench = _bench()
    rows = [{"user_id": u, "m": m, "candidate_ids": [1, 2, 3, 4] + list(range(5, m + 1)),
             "ground_truth": 2, "gt_in_history": u < 2, "gt_tipped_before": u < 3}
            for u in range(12) for m in (4, 10)]
    right, wrong = "Recommended author: 2", "Recommended author: 1"
    answers = {"base": [wrong] * 24, "sft": [right if r["user_id"] < 6 else wrong for r in rows],
               bench.PAPER: [right] * 24, "popularity": [right] * 24}
    text = bench.tables({"intervals": accuracy_intervals(answers, rows, bench.PAPER, 200)})
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}
    assert lines["base"].startswith("| base | 0.000 [0.000, 0.000] ▼")
    assert "| popularity | 1.000 [1.000, 1.000] ≈" in text  # identical answers: no difference
    assert "n@4 = 12 examples of 12 users" in text
    assert "Examples (m = 4): new to the user 9, tipped before 3, not in the shown history 10, " \
           "in the shown history 2." in text
    gains = bench.gains_table(bench.step_gains(answers, rows, 200))
    assert "| base -> sft | +0.500 [" in gains and "| sft -> sft+grpo a+f+s | +0.500 [" in gains
    assert "| sft -> sft+grpo a+f |" not in gains  # a stage not run has no row


def test_the_prompt_reader_learns_what_the_lines_show():
    """Planted: the ground truth is the candidate whose line shows the most tips. Fitted on
    train rows, the reader ranks it first on new rows, wherever it sits."""
    import numpy as np

    reader = load_bench("prompt_reader")
    history = reader.History([(u, 0, 1) for u in range(60)], {}, {})
    rng = np.random.default_rng(0)

    def row(u):
        tips = rng.permutation(4) * 3
        gt = 100 + int(np.argmax(tips))
        lines = "\n".join(f"{lb}: x | {n} tips in 30 days" for lb, n in zip("ABCD", tips,
                                                                              strict=True))
        return {"user_id": u, "tip_seq": 1, "candidate_ids": [100, 101, 102, 103],
                "candidate_labels": list("ABCD"), "ground_truth": gt,
                "prompt": [{"role": "user", "content": f"h<data>\nx\n</data>\n<data>\n{lines}\n"
                                                       "</data>"}]}

    train, val = [row(u) for u in range(40)], [row(u) for u in range(40, 60)]
    model = reader.fit(train, history)
    picks = reader.orders(model, val, history)
    assert all(r["candidate_ids"][o[0]] == r["ground_truth"] for r, o in
               zip(val, picks, strict=True))
    assert len({r["candidate_ids"].index(r["ground_truth"]) for r in val}) > 1
