"""The ``u2a`` part of the replay: Acc@m of the champion recommender model on test users'
alignment examples (the last tip held out), and the baselines' pick among the same
candidates; and the two-stage use, the champion reranking MSPA's shortlist
(:mod:`mspa_tasks.replay.rerank`). It only reads: the examples come through the catalog (``align_examples``,
published before it by the task ``replay.prepare_examples``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mspa_tasks.datasets import ALIGN_EXAMPLES
from mspa_tasks.forward_day import ReplayData, baselines, load_day
from mspa_tasks.llm.answers import answer_line, labels_of
from mspa_tasks.llm.ranking import Choices, accuracy_intervals, accuracy_report, evaluate_model
from mspa_tasks.model_store import resolve_model
from mspa_tasks.replay.parts import BASELINES, MSPA, row, write_part
from mspa_tasks.replay.rerank import rerank_part
from mspa_tasks.run import DayRun
from mspa_tasks.sampling import stable_sample
from mspa_tasks.scoring.baselines import Scorer

READER = "replay.u2a"

log = logging.getLogger(__name__)


def baseline_answers(scorer: Scorer, rows: list[dict[str, Any]],
                     data: ReplayData) -> Choices:
    """Each example answered by ``scorer``: its candidates ordered by the scorer's score for
    the user (an author it has no row for scores -inf; ties keep prompt order), the best
    written as the recommender would write it, so one reader scores both."""
    u_index, a_index = data.user_index, data.author_index
    texts, orders = [], []
    for r in rows:
        cands = [a_index.get(int(a), -1) for a in r["candidate_ids"]]
        u = u_index[int(r["user_id"])]
        scores = np.array([float(scorer.users[u] @ scorer.items[c]) if c >= 0 else -np.inf
                           for c in cands])
        order = np.argsort(-scores, kind="stable").tolist()
        orders.append(order)
        texts.append(answer_line(labels_of(r)[order[0]]))
    return Choices(texts, orders)


def chance_warnings(version: str, intervals: list[dict[str, Any]]) -> list[str]:
    """A champion that chooses no better than a coin, said first in the report rather than
    left in a table: one line per ``m`` whose Acc@m interval does not lie above 1/m.

    >>> chance_warnings("r1", [{"m": 4, "value": 0.3, "low": 0.1, "high": 0.5},
    ...                        {"m": 10, "value": 0.4, "low": 0.2, "high": 0.6}])
    ['the champion r1 picks no better than chance on test users: acc@4 0.300 [0.100, 0.500], chance 0.250']
    """
    return [f"the champion {version} picks no better than chance on test users: acc@{b['m']} "
            f"{b['value']:.3f} [{b['low']:.3f}, {b['high']:.3f}], chance {1 / b['m']:.3f}"
            for b in intervals if b["low"] is not None and not b["low"] > 1 / b["m"]]


def replay_u2a(run: DayRun) -> dict[str, Any]:
    """The ``u2a`` part: Acc@m of the champion LLM and of the baselines' picks, test users."""
    ds, warehouse_url, store, settings = run.ds, run.url, run.artifacts, run.settings
    cfg = settings.replay
    sizes = set(settings.align.examples.eval_m)
    published = ALIGN_EXAMPLES.read(store, ds, "examples", READER).to_pylist()
    rows = [r for r in published if r["split"] == "test" and r["m"] in sizes]
    chosen = set(stable_sample({r["user_id"] for r in rows}, cfg.acc_max_users, f"{ds}:acc"))
    rows = [r for r in rows if r["user_id"] in chosen]
    if not rows:
        return write_part(store, settings, ds, "u2a", {
            "metrics": [], "note": "no test-user alignment examples for this day"})
    version, ref = run.serving.recommender_version, run.serving.recommender_ref
    path = resolve_model(ref, store, settings.models_dir)
    report, answers = evaluate_model(path, rows, settings.align.gate.batch_size,
                                     settings.align.gate.max_new_tokens,
                                     label=f"champion {version}", choice=settings.align.gate.choice)
    # Held out, not forward: the label is each test user's last tip of the window ending
    # ds, kept out of the examples' histories and of the baselines' training rows.
    data = load_day(ds, warehouse_url, store, settings.ingest.window_days, held_out=True)
    models = baselines(data, settings.replay)  # only what it scores: the baselines' picks
    picks = {MSPA: answers, **{name: baseline_answers(models[name], rows, data)
                               for name in BASELINES}}
    # every figure with its 95% interval over test users, the baselines paired with MSPA
    bounds = {(r["model"], r["m"]): r for r in (accuracy_intervals(
        picks, rows, MSPA, n_boot=cfg.bootstrap, seed=cfg.seed) if cfg.bootstrap else [])
        if r["metric"] == "acc" and r["segment"] == "all"}
    metrics = []
    for name, choices in picks.items():
        figures = report if name == MSPA else accuracy_report(choices, rows)
        metrics += [row(f"acc@{m}", name, figures[f"acc@{m}"], figures[f"n@{m}"],
                        **{k: bounds[name, m][k] for k in ("low", "high", "diff", "diff_low",
                                                           "diff_high", "significant")
                           if (name, m) in bounds},
                        **({"model_version": version} if name == MSPA else {}))
                    for m in settings.align.examples.eval_m]
    metrics += [row(f"chance@{m}", "chance", 1 / m, report[f"n@{m}"])
                for m in settings.align.examples.eval_m]
    two_stage_rows, two_stage = rerank_part(
        run, [r for r in published if r["split"] == "rerank"], path, version)
    metrics += two_stage_rows
    warnings = chance_warnings(version, [b for (name, _), b in bounds.items() if name == MSPA])
    samples = [{"user_id": r["user_id"], "m": r["m"], "ground_truth": r["ground_truth"],
                "answer": a[:400]} for r, a in list(zip(rows, answers.texts, strict=True))[:5]]
    return write_part(store, settings, ds, "u2a", {
        "metrics": metrics, "champion": version, "test_users": len(chosen),
        "warnings": warnings, "choice": settings.align.gate.choice,
        "artifacts": {"mspa": f"champion {version} on the examples of {ds} (last tip held out)",
                      "baselines": f"tips of the window ending {ds}, held-out tips excluded"},
        "two_stage": two_stage,
        "format": {f"format@{m}": report[f"format@{m}"] for m in settings.align.examples.eval_m},
        "samples": samples})
