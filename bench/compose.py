"""bench/compose: batched vs one-at-a-time generation, same model, same prompts; and, on a
composed day of the demo world, how often a preference text names its user's dominant
latent category against texts shuffled across users.

    python bench/compose.py speed [--users 24] [--rounds 2]
    python bench/compose.py tokens [--users 24]
    python bench/compose.py quality --home var --ds 2026-11-20

Speed: every path composes the same users' four sections greedily with the packaged SmolLM2:
batched = the composer's path (shared-prefix groups, batch 16, the four sections answered in
one generate call); one call per section = the same before the sections were stacked;
one-at-a-time = one request per generate call. Writes bench/out/compose*.json and prints Markdown for BENCHMARKS.md.

Tokens: where the batched path's time and tokens go, per section: the shared prefix's prefill
(once per user), each section's suffix prefill (question + header) and its decode steps,
timed at the model's forward (every other second is the rest: logits processors, stopping
criteria, cache copies, tokenisation). Padding tokens are counted apart from real ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mspa_tasks.run import DayRun

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "out"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _inputs(n_users: int):
    """Settings, prompt spec, users, their section requests (the first ``n_users`` users of
    the ``tiny`` world on 2026-11-20, rendered exactly as the composer does) and the model."""
    from mspa_tasks import days
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.compose.shards import tipped_authors
    from mspa_tasks.config import load_settings
    from mspa_tasks.ingest import run_ingest
    from mspa_tasks.llm.content import load_author_content
    from mspa_tasks.llm.engine import model_version, resolve_model_path
    from mspa_tasks.llm.prompting import load_prompt
    from mspa_tasks.llm.requests import Request
    from mspa_tasks.publish import read_table
    from mspa_tasks.world.generate import PRESETS, generate_world

    home = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    settings = load_settings("local", home=home).replaced(models_dir=REPO / "var" / "models")
    ds = "2026-11-20"
    store = open_store(settings.artifacts_uri)
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=ds), settings.warehouse_url, store)
    run_ingest(DayRun(ds, settings, store, settings.warehouse_url))
    cfg = settings.compose
    spec = load_prompt(cfg.preference_prompt)
    tipped = tipped_authors(read_table(store, "sessions", ds, "sessions"))
    users = sorted(tipped)[:n_users]
    content, _ = load_author_content(settings.warehouse_url, {a for u in users for a, _ in tipped[u]},
                                     days.window_for(ds, 30).end_ms)
    from mspa_tasks.llm.prompting import render_user

    version = model_version(cfg, settings)
    inputs = [render_user(u, tipped[u], content, cfg.max_input_chars, cfg.min_author_chars,
                          version, spec.version) for u in users]
    groups = [[Request(spec.messages(x.data, s), prefill=f"{s.name}:", vocabulary=x.data)
               for s in spec.sections] for x in inputs]
    return settings, spec, users, groups, resolve_model_path(cfg, settings)


def speed(args: argparse.Namespace) -> dict:
    from mspa_tasks.llm.hf import TextBackend

    settings, spec, users, groups, path = _inputs(args.users)
    cfg = settings.compose
    batched = TextBackend(path, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
    per_section = TextBackend(path, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                              stack_sections=False)
    single = TextBackend(path, batch_size=1, max_new_tokens=cfg.max_new_tokens)
    runs = {
        "batched": lambda: [g.text for grp in batched.generate_groups(groups) for g in grp],
        "per_section": lambda: [g.text for grp in per_section.generate_groups(groups)
                                for g in grp],
        "one_at_a_time": lambda: [single.generate([r])[0].text for grp in groups for r in grp],
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    texts = {}
    for r in range(args.rounds):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            started = time.perf_counter()
            texts[name] = runs[name]()
            times[name].append(time.perf_counter() - started)
            print(f"round {r + 1} {name:<14} {times[name][-1]:.1f}s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ups = {k: len(users) / v for k, v in med.items()}
    same = {k: sum(a == b for a, b in zip(texts["batched"], texts[k], strict=True))
            for k in ("per_section", "one_at_a_time")}
    report = {"users": len(users), "sections": len(spec.sections), "median_seconds": med,
              "users_per_s": ups, "ratio": ups["batched"] / ups["one_at_a_time"],
              "ratio_to_per_section": ups["batched"] / ups["per_section"],
              "identical_answers": same, "answers": len(texts["batched"]), "runs": times,
              "batch_size": cfg.batch_size, "max_new_tokens": cfg.max_new_tokens}
    n = len(texts["batched"])
    print(f"""
| path | median s ({len(users)} users x {len(spec.sections)} sections) | users/s | answers equal to batched |
| --- | ---: | ---: | ---: |
| batched (shared-prefix groups, batch {cfg.batch_size}, sections in one call) | {med['batched']:.1f} | {ups['batched']:.2f} | {n}/{n} |
| batched, one call per section (before) | {med['per_section']:.1f} | {ups['per_section']:.2f} | {same['per_section']}/{n} |
| one at a time | {med['one_at_a_time']:.1f} | {ups['one_at_a_time']:.2f} | {same['one_at_a_time']}/{n} |

ratio batched / one-at-a-time: **{report['ratio']:.2f}x** (target >= 3); batched / one call per
section: **{report['ratio_to_per_section']:.2f}x** (greedy; padding can change a token's arithmetic)
""")
    return report


def _profile(backend, groups: list, names: list[str], warm: int) -> dict:
    """One ``generate_groups`` of ``groups`` on ``backend``, timed at the model's forward."""
    import torch

    stacked = backend.stack_sections
    state = {"in_generate": False, "calls": 0, "first": False}
    rows: dict[tuple[str, str], dict[str, float]] = {}
    forward, generate = backend.model.forward, backend.model.generate

    def add(section: str, phase: str, seconds: float, real: int, padded: int) -> None:
        row = rows.setdefault((section, phase), {"seconds": 0.0, "tokens": 0, "padding": 0,
                                                 "calls": 0})
        row["seconds"] += seconds
        row["tokens"] += real
        row["padding"] += padded
        row["calls"] += 1

    # generate() reads forward's signature (position_ids from the mask, logits_to_keep): the
    # wrapper must show the real one, or the timed run computes something else
    @functools.wraps(forward)
    def timed_forward(*a, **kw):
        ids, mask = kw.get("input_ids"), kw.get("attention_mask")
        started = time.perf_counter()
        out = forward(*a, **kw)
        seconds = time.perf_counter() - started
        n = int(ids.numel()) if ids is not None else 0
        real = int(mask[:, -ids.shape[1]:].sum()) if ids is not None and mask is not None \
            else n  # the mask's last columns are this call's tokens (left padding is 0)
        if not state["in_generate"]:
            add("(shared prefix)", "prefill", seconds, real, n - real)
        else:
            section = "(all four, one call)" if stacked else \
                names[(state["calls"] - 1) % len(names)]
            phase = "prefill" if state["first"] else "decode"
            if phase == "decode":  # a row that has finished is fed padding
                real = int((ids != backend.tokenizer.pad_token_id).sum())
            add(section, phase, seconds, real, n - real)
            state["first"] = False
        return out

    @functools.wraps(generate)
    def timed_generate(*a, **kw):
        state["in_generate"], state["first"] = True, True
        state["calls"] += 1
        try:
            return generate(*a, **kw)
        finally:
            state["in_generate"] = False

    backend.model.forward, backend.model.generate = timed_forward, timed_generate
    backend.generate_groups(groups[:warm])  # warm-up, not counted
    rows.clear()
    state["calls"] = 0
    torch.manual_seed(0)
    started = time.perf_counter()
    out = backend.generate_groups(groups)
    total = time.perf_counter() - started
    timed = sum(r["seconds"] for r in rows.values())
    table = [{"section": sec, "phase": ph, **{k: round(v, 2) if isinstance(v, float) else v
                                               for k, v in r.items()}}
             for (sec, ph), r in rows.items()]
    return {"seconds": round(total, 2), "forward_seconds": round(timed, 2),
            "answer_tokens": sum(g.tokens_out for group in out for g in group),
            "answers": [g.text for group in out for g in group], "rows": table}


def tokens(args: argparse.Namespace) -> dict:
    from mspa_tasks.llm.hf import TextBackend

    settings, spec, users, groups, path = _inputs(args.users)
    cfg = settings.compose
    names = [s.name for s in spec.sections]
    report = {"users": len(users), "sections": len(names), "batch_size": cfg.batch_size,
              "max_new_tokens": cfg.max_new_tokens, "paths": {}}
    for label, stack in (("one call per section (before)", False),
                         ("sections in one call (today)", True)):
        backend = TextBackend(path, batch_size=cfg.batch_size,
                              max_new_tokens=cfg.max_new_tokens, stack_sections=stack)
        result = _profile(backend, groups, names, cfg.batch_size)
        report["paths"][label] = result
        total, timed = result["seconds"], result["forward_seconds"]
        print(f"\n{label}: {len(users)} users x {len(names)} sections, batch "
              f"{cfg.batch_size}, {total:.1f} s in generate_groups ({timed:.1f} s in the "
              f"model's forward), {result['answer_tokens']} answer tokens\n")
        print("| section | phase | forward s | share of time | tokens (real) | padding | calls |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for r in result["rows"]:
            print(f"| {r['section']} | {r['phase']} | {r['seconds']:.1f} | "
                  f"{r['seconds'] / total:.0%} | {r['tokens']} | {r['padding']} | "
                  f"{r['calls']} |")
        print(f"| (outside the forward) | logits processors, stopping, cache copies | "
              f"{total - timed:.1f} | {(total - timed) / total:.0%} | | | |")
    before, today = report["paths"].values()
    same = sum(a == b for a, b in zip(before["answers"], today["answers"], strict=True))
    report["identical_answers"] = same
    print(f"\nsame answers on both paths: {same}/{len(today['answers'])}; "
          f"time ratio {before['seconds'] / today['seconds']:.2f}x")
    return report


def quality(args: argparse.Namespace) -> dict:
    from mspa_tasks import vocab
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.compose.evaluate import category_share
    from mspa_tasks.config import load_settings
    from mspa_tasks.datasets import WORLD_TRUTH
    from mspa_tasks.publish import read_table

    settings = load_settings("local", home=args.home)
    store = open_store(settings.artifacts_uri)
    latents = WORLD_TRUTH.read(store, WORLD_TRUTH.days(store)[-1], "users").to_pylist()
    prefs = [f"pref_{c}" for c in vocab.CATEGORIES]
    dominant = {u["user_id"]: vocab.CATEGORIES[max(range(len(prefs)), key=lambda i: u[prefs[i]])]
                for u in latents}
    rows = [r for r in read_table(store, "preference_texts", args.ds, "texts").to_pylist()
            if r["status"] == "ok"]
    result = category_share([r["text"] for r in rows], [dominant[r["user_id"]] for r in rows])
    print(f"""
| texts (status ok) | name the user's dominant latent category | same, texts shuffled across users (mean of 20) |
| ---: | ---: | ---: |
| {result['n']} | {result['own']:.1%} | {result['shuffled']:.1%} (max {result['shuffled_max']:.1%}) |
""")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--users", type=int, default=24)
    p.add_argument("--rounds", type=int, default=2)
    p = sub.add_parser("tokens")
    p.add_argument("--users", type=int, default=24)
    p = sub.add_parser("quality")
    p.add_argument("--home", type=Path, default=REPO / "var")
    p.add_argument("--ds", default="2026-11-20")
    args = parser.parse_args()
    result = {"speed": speed, "tokens": tokens, "quality": quality}[args.what](args)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"compose-{args.what}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
