"""bench/encoder: is the aligned encoder worth consuming? The forward replay of ``--ds`` on a
``make demo`` home (three days published), every model side by side, per segment, with 95%
paired bootstrap intervals over users.

Day ``D = --ds`` is scored with what was published for the model day ``M = D - 1``:

* **mspa** — the encoder aligned on ``M`` (:mod:`mspa_tasks.vectors.alignment`: train users'
  preference texts of ``M - 1`` paired with the authors they tipped or clicked on ``M``),
  encoding ``M``'s texts: the reference of every paired interval;
* **mspa_base** — the off-the-shelf encoder (``vectors.encoder``) on the same texts;
* **fused** / **fused_base** — each fused with ALS (:func:`mspa_tasks.scoring.baselines.fuse`),
  MSPA's weight chosen on validation users of ``M``'s forward replay;
* **popularity** and **als** — trained on the window ending ``M``.

Neither encoder saw day ``D`` or a validation or test user. The segments are the replay's:
new to the user / repeat, cold / established author, head / torso / tail. Also timed: the
alignment (pairs and training) against encoding the model day's texts alone, in the same run.

    python bench/encoder.py --home var --ds 2026-11-20
    python bench/encoder.py --home var/default --ds 2026-11-20 --timing-only  # two days

Writes bench/out/encoder.json and prints the Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "out"

ORDER = ("mspa", "mspa_base", "fused", "fused_base", "popularity", "als")
HEADLINE = ("auc_click", "uauc_click", "auc_gift", "uauc_gift", "hr@10", "hr@100", "hr@1000",
            "recall@10", "ndcg@10", "a2a_alignment")
SEGMENT_METRICS = ("uauc_click", "hr@100", "hr@1000")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", default=str(REPO / "var"), help="a make demo home (MSPA_HOME)")
    p.add_argument("--ds", default="2026-11-20", help="the replayed day D")
    p.add_argument("--timing-only", action="store_true",
                   help="align on --ds and time it against encoding; no replay (two days "
                        "published suffice)")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--out", default=str(OUT / "encoder.json"))
    return p.parse_args(argv)


def fmt(r: dict[str, Any] | None) -> str:
    """One cell: value, 95% interval, and the paired verdict against ``mspa``.

    >>> fmt({"value": 0.5, "low": 0.4, "high": 0.6, "significant": True, "diff": -0.1})
    '0.500 [0.400, 0.600] ▼'
    >>> fmt(None)
    '–'
    """
    if r is None or r.get("value") is None:
        return "–"
    sig = r.get("significant")
    mark = "" if sig is None else (" ≈" if not sig else (" ▲" if r["diff"] > 0 else " ▼"))
    low, high = r.get("low"), r.get("high")
    interval = "" if low is None or high is None else f" [{low:.3f}, {high:.3f}]"
    return f"{r['value']:.3f}{interval}{mark}"


def tables(body: dict[str, Any]) -> str:
    """The overall table and the per-segment table as Markdown (models in :data:`ORDER`)."""
    models = [m for m in ORDER if any(r["model"] == m for r in body["metrics"])]
    pick = {(r["metric"], r["model"]): r for r in body["metrics"]}
    out = ["| metric | " + " | ".join(models) + " |", "|" + " --- |" * (len(models) + 1)]
    for metric in HEADLINE:
        if any((metric, m) in pick for m in models):
            out.append(f"| {metric} | " + " | ".join(fmt(pick.get((metric, m)))
                                                     for m in models) + " |")
    seg = {(r["segment"], r["metric"], r["model"]): r for r in body["segments"]}
    segments = list(dict.fromkeys(r["segment"] for r in body["segments"]))
    out += ["", "| segment | metric | " + " | ".join(models) + " | users |",
            "|" + " --- |" * (len(models) + 3)]
    for s in segments:
        for metric in SEGMENT_METRICS:
            cells = [seg.get((s, metric, m)) for m in models]
            if any(cells):
                users = next((c.get("users") for c in cells if c), "")
                out.append(f"| {s} | {metric} | " + " | ".join(fmt(c) for c in cells)
                           + f" | {users} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import os

    os.environ["MSPA_HOME"] = str(Path(args.home).resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.config import load_settings
    from mspa_tasks.forward_day import build_forward_day, model_day, scorers
    from mspa_tasks.replay.offline import offline_body
    from mspa_tasks.run import DayRun
    from mspa_tasks.scoring.baselines import fuse
    from mspa_tasks.vectors.alignment import (
        CANDIDATE,
        CHAMPION,
        evaluate_encoders,
        train_encoder,
        training_pairs,
    )
    from mspa_tasks.vectors.encode import Encoder, author_texts, preference_texts, resolve_encoder

    settings = load_settings("local", home=Path(args.home).resolve())
    settings = settings.replaced(replay={"bootstrap": args.boot})
    store = open_store(settings.artifacts_uri)
    url = settings.warehouse_url
    cfg = settings.vectors
    result: dict[str, Any] = {"ds": args.ds, "config": cfg.align.model_dump()}

    # the alignment of the model day M (or of --ds itself with --timing-only)
    align_day = args.ds if args.timing_only else model_day(args.ds, store)
    texts_day = model_day(align_day, store)
    base = Encoder(cfg, resolve_encoder(cfg))
    started = time.perf_counter()
    pairs = training_pairs(align_day, texts_day, url, store, cfg.align)
    pairs_s = time.perf_counter() - started
    scratch = Path(tempfile.mkdtemp(prefix="bench-encoder-"))
    training = train_encoder(pairs, resolve_encoder(cfg)[0], cfg.align, scratch / "model")
    aligned = Encoder(cfg, (str(scratch / "model"), "bench-aligned"))

    # encoding alone: every text of the model day (what `encode` does on a day nothing is
    # reused), with the off-the-shelf encoder
    authored = author_texts(store, align_day)
    ok_users, _ = preference_texts(store, align_day)
    started = time.perf_counter()
    base.encode(authored.texts, "author texts")
    base.encode([r["text"] for r in ok_users], "preference texts")
    encode_s = time.perf_counter() - started
    result["timing"] = {
        "pairs": len(pairs), "train_users": len({u for u in pairs.table.column("user_id")
                                                 .to_pylist()}),
        "authors": len(authored.texts), "users": len(ok_users),
        "pairs_seconds": round(pairs_s, 1), "train_seconds": training["seconds"],
        "encode_all_seconds": round(encode_s, 1),
        "align_over_encode": round((pairs_s + training["seconds"]) / encode_s, 2),
        "steps": len(training["steps"]), "first_loss": training["steps"][0]["loss"],
        "last_loss": training["steps"][-1]["loss"]}
    print(json.dumps(result["timing"], indent=2))
    if not args.timing_only:
        align_run = DayRun(align_day, settings, store, url)
        gate = evaluate_encoders(align_run, {CANDIDATE: aligned, CHAMPION: base},
                                 build_forward_day(align_run))
        weights = gate["fusion_weights"]
        result["gate_on_model_day"] = gate
        data, als_scorer = build_forward_day(DayRun(args.ds, settings, store, url))
        baseline = scorers(data, settings, als_scorer=als_scorer)  # of the window ending M
        by_id = dict(zip(authored.author_ids, authored.texts, strict=True))
        a_texts = [by_id[int(a)] for a in data.author_ids]
        u_index = data.user_index
        rows = [u_index[r["user_id"]] for r in ok_users if r["user_id"] in u_index]
        u_texts = [r["text"] for r in ok_users if r["user_id"] in u_index]
        import numpy as np

        from mspa_tasks.scoring.baselines import Scorer

        models = {}
        for name, enc in (("mspa", aligned), ("mspa_base", base)):
            users = np.zeros((len(data.user_ids), enc.dim), np.float32)
            users[rows] = enc.encode(u_texts, f"{name} users")
            models[name] = Scorer(name, users, enc.encode(a_texts, f"{name} authors"))
        has = np.flatnonzero(data.has_vector)
        models["fused"] = fuse(models["mspa"], baseline["als"], weights[CANDIDATE], has)
        models["fused_base"] = fuse(models["mspa_base"], baseline["als"], weights[CHAMPION],
                                    has)
        models["popularity"], models["als"] = baseline["popularity"], baseline["als"]
        body = offline_body(data, models, store, settings.replay)
        result["replay"] = body
        result["fusion_weights"] = {"fused": weights[CANDIDATE], "fused_base": weights[CHAMPION]}
        print(tables(body))
        print(f"\nfusion weight (MSPA's share, chosen on {gate['validation_users']} validation "
              f"users of {align_day}): fused {weights[CANDIDATE]}, fused_base "
              f"{weights[CHAMPION]}; segment counts {body['segment_counts']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
