"""bench/retrain: the paper's ablation (Table 3) reproduced on the demo world, with intervals.

On the alignment examples of ``--ds`` (built from the published sessions, texts and vectors
of a ``make demo`` home), in one run and on the same validation examples:

1. **base**: the packaged SmolLM2-135M-Instruct, untrained;
2. **sft**: the supervised warm start (TRL ``SFTTrainer``) on the train users' targets;
3. **sft+grpo a+f**: GRPO from the warm start with accuracy + format;
4. **sft+grpo a+f+s**: the same with the dense similarity reward too (the paper's recipe);
5. **popularity** and **als**: the replay's baselines, trained on the same window with every
   validation user's held-out last tip removed, answering the same candidate sets;
6. **prompt reader**: the reference, a logistic regression over the features the prompt shows
   (``bench/prompt_reader.py``), fitted on the train examples: what an ideal reader of that
   prompt gets.

The headline sets follow ``[align.examples] negatives`` (``live``, the paper's protocol:
negatives random among the authors live at the labelled tip); with ``--hard`` every model
answers the hard sets too (half the truth's nearest neighbours), a second table.

Each LLM answers once (greedy); its choice is read two ways from that one answer: **scored**
(the probability of each candidate's letter after "Recommended author:", a full order, so
Recall@5 and NDCG@5 at m = 10 too) and **generated** (the letter its answer names: the row
"<model> (generated)"), with ``align.examples.candidate_labels = "letters"``; with "ids" only generated.

Each model's Acc@4, Acc@10, format and answered rates, with 95% bootstrap intervals over
validation users and the paired difference against the paper's recipe (``▲`` the row is
significantly above it, ``▼`` below, ``≈`` no significant difference); Acc@m again by
segment: the ground truth new to the user or tipped before in the window, and shown in the
prompt's history or not (a model that only recognises names from the history must not look
good on "not in the shown history"). GRPO's health per step: the share of groups whose
completions all got the same reward (``frac_reward_zero_std``). Both GRPO variants start
from the same warm-start weights; every stage is timed.

    python bench/retrain.py --home var --ds 2026-11-20 [--sft-steps 48 --grpo-steps 8]
    MSPA_CONFIG=side.toml python bench/retrain.py ...  # side.toml: [align.examples] user_side =
                                                      # "preference_text" (the paper's input)
    make demo SEED=7 MSPA_HOME=$PWD/var-seed7      # the same recipe on a world seeded differently
    python bench/retrain.py --home var-seed7 --out bench/out/retrain-seed7.json

Writes bench/out/retrain.json and prints the Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
OUT = REPO / "bench" / "out"

PAPER = "sft+grpo a+f+s"
VARIANTS = {  # name: (rewards, their weights lambda)
    "sft+grpo a+f": (("accuracy", "format"), (1.0, 0.5)),
    PAPER: (("accuracy", "format", "similarity"), (1.0, 0.5, 0.5)),
}
READER = "prompt reader"
ORDER = ("base", "sft", "sft+grpo a+f", PAPER, "popularity", "als", READER)
GENERATED = " (generated)"  # the same answers, the choice read from the text


def ordered(models: set[str]) -> list[str]:
    """The table's row order: each model of :data:`ORDER`, its generated reading after it.

    >>> ordered({"als", "sft (generated)", "sft", "base"})
    ['base', 'sft', 'sft (generated)', 'als']
    """
    return [n for m in ORDER for n in (m, m + GENERATED) if n in models]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", default=str(REPO / "var"), help="a make demo home (MSPA_HOME)")
    p.add_argument("--ds", default="2026-11-20")
    p.add_argument("--sft-steps", type=int, default=None, help="default: [align.sft] max_steps")
    p.add_argument("--grpo-steps", type=int, default=None, help="default: [align.grpo] max_steps")
    p.add_argument("--train-users", type=int, default=None,
                   help="default: [align.examples] max_train_users")
    p.add_argument("--eval-users", type=int, default=0, help="validation users; 0 = all")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--hard", action="store_true",
                   help="every model answers the hard sets too (a second table)")
    p.add_argument("--out", default=str(OUT / "retrain.json"))
    return p.parse_args(argv)


def _fmt(r: dict[str, Any] | None) -> str:
    if r is None or r["value"] is None:
        return "–"
    mark = "" if r["significant"] is None else (
        " ≈" if not r["significant"] else (" ▲" if r["diff"] > 0 else " ▼"))
    return f"{r['value']:.3f} [{r['low']:.3f}, {r['high']:.3f}]{mark}"


def tables(result: dict[str, Any]) -> str:
    """The ablation and the memory/preference split as Markdown."""
    rows = result["intervals"]
    pick = {(r["model"], r["metric"], r["m"], r["segment"]): r for r in rows}
    sizes = sorted({r["m"] for r in rows})
    models = ordered({r["model"] for r in rows})
    cols = [(metric, m) for metric in ("acc", "recall5", "ndcg5", "format", "answered")
            for m in sizes if any(r["metric"] == metric and r["m"] == m for r in rows)]
    head = "| model | " + " | ".join(f"{metric}@{m}" for metric, m in cols) + " |"
    out = [head, "|" + " --- |" * (len(cols) + 1)]
    for model in models:
        cells = [_fmt(pick.get((model, metric, m, "all"))) for metric, m in cols]
        out.append(f"| {model} | " + " | ".join(cells) + " |")
    chance = " · ".join(f"chance@{m} = {1 / m:.3f}" for m in sizes)
    n = " · ".join(f"n@{m} = {pick[(PAPER, 'acc', m, 'all')]['n']} examples of "
                   f"{pick[(PAPER, 'acc', m, 'all')]['users']} users"
                   for m in sizes if (PAPER, "acc", m, "all") in pick)
    out += ["", f"{chance}; {n}.", ""]
    labels = {"new": "new to the user", "repeat": "tipped before",
              "unseen": "not in the shown history", "shown": "in the shown history"}
    for m in sizes:
        out.append(f"| acc@{m} by segment | " + " | ".join(labels.values()) + " |")
        out.append("|" + " --- |" * (len(labels) + 1))
        for model in models:
            out.append(f"| {model} | " + " | ".join(
                _fmt(pick.get((model, "acc", m, s))) for s in labels) + " |")
        counts = ", ".join(f"{labels[s]} {pick[(PAPER, 'acc', m, s)]['n']}" for s in labels
                           if (PAPER, "acc", m, s) in pick)
        out += ["", f"Examples (m = {m}): {counts}.", ""]
    return "\n".join(out)


STEPS = (("sft", "base"), ("sft+grpo a+f", "sft"), (PAPER, "sft+grpo a+f"), (PAPER, "sft"))


def step_gains(answers: dict[str, list[str]], rows: list[dict[str, Any]],
               n_boot: int) -> list[dict[str, Any]]:
    """What each step of the recipe added: the paired difference of Acc@m (all examples) and
    format@m between a stage and the one it started from, with its 95% interval.

    >>> rows = [{"user_id": u, "m": 4, "candidate_ids": [1, 2, 3, 4], "ground_truth": 2}
    ...         for u in range(8)]
    >>> right, wrong = "Recommended author: 2", "Recommended author: 1"
    >>> answers = {"base": [wrong] * 8, "sft": [right] * 8, "sft+grpo a+f": [right] * 8,
    ...            PAPER: [right] * 4 + [wrong] * 4}
    >>> [(g["step"], g["metric"], g["diff"], g["significant"]) for g in
    ...  step_gains(answers, rows, 200) if g["metric"] == "acc"]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('base -> sft', 'acc', 1.0, True), ('sft -> sft+grpo a+f', 'acc', 0.0, False),
     ('sft+grpo a+f -> sft+grpo a+f+s', 'acc', -0.5, True), ('sft -> sft+grpo a+f+s', 'acc', -0.5, True)]
    """
    from mspa_tasks.llm.ranking import accuracy_intervals

    out = []
    for new, old in STEPS:
        if new not in answers or old not in answers:
            continue
        for r in accuracy_intervals({old: answers[old], new: answers[new]}, rows, old, n_boot):
            if r["model"] == new and r["segment"] == "all" and r["metric"] in ("acc", "format"):
                out.append({"step": f"{old} -> {new}", "metric": r["metric"], "m": r["m"],
                            "diff": r["diff"], "low": r["diff_low"], "high": r["diff_high"],
                            "significant": r["significant"]})
    return out


def gains_table(gains: list[dict[str, Any]]) -> str:
    """The step gains as Markdown: one row per step, one column per metric and m."""
    cols = sorted({(g["metric"], g["m"]) for g in gains})
    out = ["| step | " + " | ".join(f"Δ {metric}@{m}" for metric, m in cols) + " |",
           "|" + " --- |" * (len(cols) + 1)]
    for step in dict.fromkeys(g["step"] for g in gains):
        cell = {(g["metric"], g["m"]): g for g in gains if g["step"] == step}
        out.append(f"| {step} | " + " | ".join(
            f"{c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"
            + (" *" if c["significant"] else "") if (c := cell.get(k)) else "–"
            for k in cols) + " |")
    return "\n".join(out + ["", "* the paired 95% interval excludes 0."])


def position_table(by_position: list[dict[str, Any]]) -> str:
    """Acc@m by the ground truth's position in the prompt, one row per model and m.

    >>> print(position_table([{"model": "base", "m": 2, "position": 0, "acc": 1.0, "n": 3},
    ...                       {"model": "base", "m": 2, "position": 1, "acc": 0.0, "n": 2}]))
    | model | m | acc at position 1, 2, ... (n) |
    | --- | --- | --- |
    | base | 2 | 1.00 (3) · 0.00 (2) |
    """
    out = ["| model | m | acc at position 1, 2, ... (n) |", "| --- | --- | --- |"]
    keys = dict.fromkeys((r["model"], r["m"]) for r in by_position)
    for model, m in keys:
        cells = [f"{r['acc']:.2f} ({r['n']})" for r in by_position
                 if r["model"] == model and r["m"] == m]
        out.append(f"| {model} | {m} | " + " · ".join(cells) + " |")
    return "\n".join(out)


def tokens_per_example(rows: list[dict[str, Any]], model_path: str) -> dict[str, float]:
    """Prompt tokens per example (chat template applied) and the target's, mean and max."""
    import numpy as np
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    prompt = [len(tok(tok.apply_chat_template(r["prompt"], tokenize=False,
                                              add_generation_prompt=True)).input_ids)
              for r in rows]
    target = [len(tok(r["target"]).input_ids) for r in rows]
    return {"prompt_mean": round(float(np.mean(prompt)), 1), "prompt_max": int(max(prompt)),
            "target_mean": round(float(np.mean(target)), 1)}


def reward_spread(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """How far each dense reward tells the truth (1.0) from a wrong pick: the mean reward a
    negative earns, and the mean gap between the truth and the best-paid negative.

    >>> rows = [{"candidate_ids": [1, 2, 3], "ground_truth": 1, "candidate_labels": list("ABC"),
    ...          "candidate_vectors": [[1.0, 0.0], [0.96, 0.28], [0.0, 1.0]]}]
    >>> reward_spread(rows)["similarity_rank"]
    {'negative_mean': 0.25, 'gap_to_best_negative': 0.5}
    """
    import numpy as np

    from mspa_tasks.align.rewards import reward_if_picked

    out = {}
    for name in ("similarity", "similarity_rank"):
        paid = [reward_if_picked(name, r) for r in rows]
        negatives = [[p for a, p in zip(r["candidate_ids"], pay, strict=True)
                      if a != r["ground_truth"]] for r, pay in zip(rows, paid, strict=True)]
        out[name] = {"negative_mean": round(float(np.mean([np.mean(n) for n in negatives])), 4),
                     "gap_to_best_negative": round(float(np.mean(
                         [1.0 - max(n) for n in negatives])), 4)}
    return out


def reader_history(store, ds: str):
    """The prompt reader's view of the day: sessions, profiles and author vectors."""
    import prompt_reader

    from mspa_tasks.datasets import AUTHOR_VECTORS, SESSIONS, read_vectors

    sessions = SESSIONS.read(store, ds, "sessions")
    events = list(zip(*(sessions.column(c).to_pylist() for c in ("user_id", "seq", "author_id")),
                      strict=True))
    profile = {r["author_id"]: r for r in SESSIONS.read(store, ds, "authors").to_pylist()}
    table, vectors = read_vectors(store, AUTHOR_VECTORS, ds)
    return prompt_reader.History(events, profile, dict(zip(
        table.column("author_id").to_pylist(), vectors, strict=True)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import prompt_reader

    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("bench.retrain")

    from mspa_tasks.align.examples import build_examples, read_examples
    from mspa_tasks.align.train import RunConfig, grpo, warm_start
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.config import load_settings
    from mspa_tasks.forward_day import load_day, scorers
    from mspa_tasks.llm.answers import answer_line, labels_of
    from mspa_tasks.llm.ranking import (
        Choices,
        accuracy_by_position,
        accuracy_intervals,
        choose,
    )
    from mspa_tasks.model_store import resolve_model
    from mspa_tasks.replay.u2a import baseline_answers

    settings = load_settings(home=args.home)
    changes: dict[str, dict[str, Any]] = {"examples": {"max_eval_users": args.eval_users}}
    for (sub, key), value in ((("sft", "max_steps"), args.sft_steps),
                              (("grpo", "max_steps"), args.grpo_steps),
                              (("examples", "max_train_users"), args.train_users)):
        if value is not None:
            changes.setdefault(sub, {})[key] = value
    settings = settings.with_align(**changes)
    cfg = settings.align
    store = open_store(settings.artifacts_uri)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    # the other candidate line's prompt length, for the tokens per example before/after
    other_format = "text" if cfg.examples.candidate_format == "structured" else "structured"
    build_examples(args.ds, settings.warehouse_url, store,
                   settings.with_align(examples={"candidate_format": other_format}))
    other_rows = read_examples(store, args.ds, "val", cfg.examples.eval_m)
    sets: dict[str, dict[str, list[dict[str, Any]]]] = {}
    protocols = [p for p in ("hard",) if args.hard and cfg.examples.negatives != "hard"]
    for protocol in [*protocols, cfg.examples.negatives]:  # the headline's last: it stays
        build_examples(args.ds, settings.warehouse_url, store,
                       settings.with_align(examples={"negatives": protocol}))
        sets[protocol] = {"train": read_examples(store, args.ds, "train", cfg.examples.train_m),
                          "val": read_examples(store, args.ds, "val", cfg.examples.eval_m)}
    train_rows, val_rows = (sets[cfg.examples.negatives][s] for s in ("train", "val"))
    timings["examples"] = time.perf_counter() - started
    log.info("%d train examples (%d users), %d validation examples (%d users)",
             len(train_rows), len({r["user_id"] for r in train_rows}), len(val_rows),
             len({r["user_id"] for r in val_rows}))

    choice = "scored" if cfg.examples.candidate_labels == "letters" else "generated"

    def answer(name: str, path: str) -> None:
        for protocol, got in answers_by.items():
            t = time.perf_counter()
            got[name] = choose(path, sets[protocol]["val"], cfg.gate.batch_size,
                               cfg.gate.max_new_tokens, choice, f"{name} ({protocol})")
            if got[name].orders is not None:
                got[name + GENERATED] = Choices(got[name].texts)
            timings[f"evaluate {name} ({protocol})"] = time.perf_counter() - t

    answers_by: dict[str, dict[str, Choices]] = {p: {} for p in sets}
    answers = answers_by[cfg.examples.negatives]
    train_metrics: dict[str, Any] = {}
    base = resolve_model(cfg.base_model, store, settings.models_dir)
    answer("base", base)
    run = RunConfig(ds=args.ds, version="bench-ablation", artifacts_uri=settings.artifacts_uri,
                    model=cfg.base_model, champion=cfg.base_model, champion_version="base",
                    models_dir=str(settings.models_dir), align=cfg)
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        out = Path(tmp)
        t = time.perf_counter()
        train_metrics["sft"] = warm_start(run, train_rows, base, out / "sft")
        timings["train sft"] = time.perf_counter() - t
        answer("sft", str(out / "sft"))
        for name, (rewards, weights) in VARIANTS.items():
            variant = dataclasses.replace(run, align=cfg.replaced(grpo={"rewards": rewards,
                                                                        "reward_weights": weights}))
            t = time.perf_counter()
            folder = out / name.replace(" ", "_").replace("+", "p")
            train_metrics[name] = grpo(variant, train_rows, str(out / "sft"), folder)
            timings[f"train {name}"] = time.perf_counter() - t
            answer(name, str(folder / "model"))

    t = time.perf_counter()
    data = load_day(args.ds, settings.warehouse_url, store, settings.ingest.window_days,
                    held_out=True, hold_out=("val",))
    models = scorers(data, settings)
    history = reader_history(store, args.ds)
    for protocol, got in answers_by.items():
        for name in ("popularity", "als"):
            got[name] = baseline_answers(models[name], sets[protocol]["val"], data)
        reader = prompt_reader.fit(sets[protocol]["train"], history)
        rows = sets[protocol]["val"]
        picks = prompt_reader.orders(reader, rows, history)
        got[READER] = Choices([answer_line(labels_of(r)[o[0]]) for r, o in
                               zip(rows, picks, strict=True)], picks)
    timings["baselines and the prompt reader"] = time.perf_counter() - t

    intervals = accuracy_intervals(answers, val_rows, PAPER, args.boot)
    hard = {p: accuracy_intervals(answers_by[p], sets[p]["val"], PAPER, args.boot)
            for p in answers_by if p != cfg.examples.negatives}
    by_position = accuracy_by_position(answers, val_rows)
    gains = step_gains(answers, val_rows, args.boot)
    result = {
        "ds": args.ds, "home": args.home,
        "config": {"sft": cfg.sft.model_dump(), "grpo": cfg.grpo.model_dump(),
                   "examples": cfg.examples.model_dump(), "recipe": cfg.recipe},
        "examples": {"train": len(train_rows), "val": len(val_rows),
                     "train_users": len({r["user_id"] for r in train_rows}),
                     "val_users": len({r["user_id"] for r in val_rows})},
        "negatives": cfg.examples.negatives, "intervals": intervals,
        "reward_spread": {p: reward_spread(sets[p]["train"]) for p in sets},
        "other_protocols": hard, "step_gains": gains, "by_position": by_position,
        "tokens_per_example": {
            cfg.examples.candidate_format: tokens_per_example(val_rows, base),
            other_format: tokens_per_example(other_rows, base)},
        "zero_std_share": {n: train_metrics[n].get("zero_std_share") for n in VARIANTS},
        "sft_loss": [s["loss"] for s in train_metrics["sft"]["steps"]],
        "grpo_reward": {n: [s["reward"] for s in train_metrics[n]["steps"]] for n in VARIANTS},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "samples": [{"user_id": r["user_id"], "m": r["m"], "ground_truth": r["ground_truth"],
                     **{n: answers[n].texts[i][:300] for n in ("base", "sft", PAPER)}}
                    for i, r in enumerate(val_rows[:4])],
        # every answer, to study what a model picks without rerunning the bench
        "answers": {"rows": [{k: r[k] for k in ("user_id", "m", "candidate_ids",
                                                "ground_truth", "gt_in_history",
                                                "gt_tipped_before")} for r in val_rows],
                    **{n: {"texts": c.texts, "orders": c.orders} for n, c in answers.items()}},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(f"Candidate sets: negatives = {cfg.examples.negatives}")
    print(tables(result))
    print()
    for protocol, rows in hard.items():
        print(f"Candidate sets: negatives = {protocol}")
        print(tables({"intervals": rows}))
        print()
    print(gains_table(gains))
    print()
    print(position_table(by_position))
    print()
    print("prompt tokens per validation example, by candidate line:",
          result["tokens_per_example"])
    print("what a wrong pick earns, per protocol (train examples; the truth earns 1.0):",
          result["reward_spread"])
    for name in VARIANTS:
        print(f"{name}: frac_reward_zero_std per step {result['zero_std_share'][name]}, "
              f"reward per step {[round(x, 3) for x in result['grpo_reward'][name]]}")
    print("SFT loss per step:", [round(x, 3) for x in result["sft_loss"]])
    print("time (s):", result["timings_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
