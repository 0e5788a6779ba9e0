"""bench/ingest: the ingest steps over a scale world against a plain SELECT of the same window.

Each side runs in its own fresh process (so peak RSS is its own), alternating, several
rounds; the median time ratio is reported. The pipeline side is everything the DAG's
ingest group does for a day: extract + classify + quarantine, quality gate, filters,
reading kept sessions and writing the Parquet partition with its manifest. The reference is
`pandas.read_sql` of `SELECT * FROM tip_events` over the same 30-day window.

    python bench/ingest.py [--preset scale] [--rounds 3]

Writes bench/out/ingest.json and prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mspa_tasks.run import DayRun

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "out"


def _peak_rss_mb() -> float:
    # VmHWM (not ru_maxrss, which survives exec and would report the parent's peak).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_pipeline(home: Path, ds: str) -> dict:
    from mspa_tasks import ingest
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.config import load_settings

    settings = load_settings("local", home=home)
    url = settings.warehouse_url
    store = open_store(f"file://{home}/bench-artifacts")
    started = time.perf_counter()
    run = DayRun(ds, settings, store, url)
    ingest.prepare_tables(run)
    ingest.extract_window(run)
    ingest.quality_gate(run)
    published = ingest.publish_sessions(run)
    seconds = time.perf_counter() - started
    ev = published.manifest["counts"]["events"]
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "candidates": ev["candidates"],
            "kept": ev["kept"]}


def child_reference(home: Path, ds: str) -> dict:
    import pandas as pd
    import sqlalchemy as sa

    from mspa_tasks.days import window_for
    from mspa_tasks.warehouse import make_engine

    w = window_for(ds, 30)
    engine = make_engine(f"sqlite:///{home}/warehouse.db")
    started = time.perf_counter()
    with engine.connect() as conn:
        df = pd.read_sql(sa.text("SELECT * FROM tip_events WHERE ts >= :s AND ts < :e"), conn,
                         params={"s": w.start_ms, "e": w.end_ms})
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "rows": len(df)}


def ensure_world(preset: str, home: Path) -> dict:
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.world.generate import PRESETS, generate_world

    spec = PRESETS[preset]
    key = hashlib.sha256(json.dumps(dataclasses.asdict(spec), sort_keys=True).encode()).hexdigest()
    stamp = home / "world.key"
    if stamp.exists() and stamp.read_text() == key:
        return json.loads((home / "artifacts/world/summary.json").read_text())
    home.mkdir(parents=True, exist_ok=True)
    (home / "warehouse.db").unlink(missing_ok=True)
    summary = generate_world(spec, f"sqlite:///{home}/warehouse.db",
                             open_store(f"file://{home}/artifacts"))
    stamp.write_text(key)
    return dataclasses.asdict(summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="scale")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["pipeline", "reference"])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--ds")
    args = parser.parse_args()
    if args.child:
        fn = child_pipeline if args.child == "pipeline" else child_reference
        print(json.dumps(fn(args.home, args.ds)))
        return 0

    home = OUT / f"world-{args.preset}"
    t0 = time.perf_counter()
    world = ensure_world(args.preset, home)
    print(f"world ready in {time.perf_counter() - t0:.0f}s: {world['rows']}", flush=True)
    ds = world["spec"]["end_ds"]
    runs: dict[str, list[dict]] = {"pipeline": [], "reference": []}
    for r in range(args.rounds):
        for side in ("reference", "pipeline") if r % 2 else ("pipeline", "reference"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", side, "--home", str(home), "--ds", ds],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[side].append(result)
            print(f"round {r + 1} {side:<9} {result}", flush=True)
    med = {side: statistics.median(x["seconds"] for x in v) for side, v in runs.items()}
    peak = {side: max(x["peak_rss_mb"] for x in v) for side, v in runs.items()}
    report = {
        "preset": args.preset, "ds": ds, "world_rows": world["rows"],
        "window_rows_reference": runs["reference"][0]["rows"],
        "candidates": runs["pipeline"][0]["candidates"], "kept": runs["pipeline"][0]["kept"],
        "median_seconds": med, "peak_rss_mb": peak,
        "time_ratio": med["pipeline"] / med["reference"], "runs": runs,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ingest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"""
| side | median s | peak RSS MB |
| --- | ---: | ---: |
| ingest pipeline (extract, quarantine, gate, filters, publish) | {med['pipeline']:.2f} | {peak['pipeline']:.0f} |
| plain SELECT of the window into a DataFrame | {med['reference']:.2f} | {peak['reference']:.0f} |

time ratio pipeline/reference: **{report['time_ratio']:.2f}** (target <= 2.0); window rows
{report['window_rows_reference']:,}, candidates {report['candidates']:,}, kept {report['kept']:,}
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
