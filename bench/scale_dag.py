"""bench/scale_dag: the whole daily DAG through Airflow on the scale world.

Seeds the ``scale-dag`` world (>= 20k users, >= 100k authors, >= 2M tip events) into
``--home`` unless it is there, runs ``airflow dags test mspa_daily <ds>`` with the settings of
``bench/scale_dag.toml`` over the embedded default, samples the resident memory of the
Airflow process tree every half second, and reads each task's start and end from Airflow's
metadata database. Per task group: wall time (first start to last end), the sum of its
tasks' durations, and the peak RSS seen while the group ran (``dags test`` runs tasks in
one process, so that peak includes what earlier groups left allocated: an upper bound).

    python bench/scale_dag.py --home /path/with/space [--ds 2026-11-20]

Writes ``bench/out/scale_dag.json`` and prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
BIN = Path(sys.executable).parent


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _run_sampled(cmd: list[str], env: dict, log_path: Path) -> tuple[int, list[tuple[float, int]]]:
    samples: list[tuple[float, int]] = []
    with log_path.open("w") as log:
        child = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        proc = psutil.Process(child.pid)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append((time.time(), _tree_rss(proc)))
                done.wait(0.5)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        rc = child.wait()
        done.set()
        thread.join()
    return rc, samples


def _step(env: dict, *args: str) -> None:
    result = subprocess.run(list(args), env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")


def _ts(value: str) -> float:
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--ds", default="2026-11-20")
    parser.add_argument("--preset", default="scale-dag")
    parser.add_argument("--config", type=Path, default=REPO / "bench" / "scale_dag.toml")
    parser.add_argument("--no-run", action="store_true",
                        help="summarise the last run in --home again, without running")
    args = parser.parse_args()
    home = args.home.resolve()
    env = {**os.environ, "MSPA_ENV": "local", "MSPA_HOME": str(home / "mspa"),
           "AIRFLOW_HOME": str(home / "airflow"), "MSPA_CONFIG": str(args.config.resolve()),
           "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    OUT.mkdir(parents=True, exist_ok=True)
    world = home / "mspa" / "artifacts" / "world" / "summary.json"
    if not world.exists():
        print(f"seeding the {args.preset} world into {home} ...", flush=True)
        _step(env, str(BIN / "python"), "-m", "mspa_tasks", "seed-world", "--preset",
              args.preset, "--end-ds", args.ds)
    summary = json.loads(world.read_text())
    _step(env, str(BIN / "airflow"), "db", "migrate")
    for name, slots in (("mspa_compose", "2"), ("mspa_milvus", "1"), ("mspa_gpu", "1")):
        _step(env, str(BIN / "airflow"), "pools", "set", name, slots, name)

    sampled = home / "rss-samples.json"  # kept, so a summary can be redone (--no-run)
    if args.no_run:
        rc, wall, samples = 0, 0.0, json.loads(sampled.read_text()) if sampled.exists() else []
    else:
        print(f"airflow dags test mspa_daily {args.ds} (log: {home / 'dag.log'}) ...",
              flush=True)
        started = time.time()
        rc, samples = _run_sampled(
            [str(BIN / "airflow"), "dags", "test", "mspa_daily", args.ds], env, home / "dag.log")
        wall = time.time() - started
        sampled.write_text(json.dumps(samples))
    db = sqlite3.connect(home / "airflow" / "airflow.db")
    rows = db.execute(
        "SELECT ti.task_id, ti.map_index, ti.state, ti.start_date, ti.end_date "
        "FROM task_instance ti JOIN dag_run r ON r.run_id = ti.run_id AND r.dag_id = ti.dag_id "
        "WHERE ti.dag_id = 'mspa_daily' AND r.logical_date LIKE ? ORDER BY ti.start_date",
        (f"{args.ds}%",)).fetchall()
    db.close()
    groups: dict[str, dict] = {}
    tasks = []
    for task_id, map_index, state, start, end in rows:
        if not (start and end):
            continue
        t0, t1 = _ts(start), _ts(end)
        tasks.append({"task": task_id, "map_index": map_index, "state": state,
                      "seconds": round(t1 - t0, 1)})
        g = groups.setdefault(task_id.split(".")[0], {"start": t0, "end": t1, "task_s": 0.0})
        g["start"], g["end"] = min(g["start"], t0), max(g["end"], t1)
        g["task_s"] += t1 - t0
    for g in groups.values():
        inside = [rss for t, rss in samples if g["start"] <= t <= g["end"]]
        g["wall_s"] = round(g["end"] - g["start"], 1)
        g["task_s"] = round(g["task_s"], 1)
        g["peak_rss_mb"] = round(max(inside, default=0) / 2**20)
    result = {"ds": args.ds, "rc": rc, "wall_s": round(wall, 1), "world": summary["rows"],
              "peak_rss_mb": round(max((r for _, r in samples), default=0) / 2**20),
              "groups": {k: {x: v[x] for x in ("wall_s", "task_s", "peak_rss_mb")}
                         for k, v in groups.items()},
              "tasks": tasks, "config": args.config.read_text()}
    (OUT / "scale_dag.json").write_text(json.dumps(result, indent=2))
    print(f"rc {rc}; wall {wall:.0f} s; peak RSS {result['peak_rss_mb']} MB; world "
          f"{summary['rows']}")
    print("| task group | wall s | sum of task s | peak RSS MB |\n| --- | ---: | ---: | ---: |")
    for name, g in result["groups"].items():
        print(f"| {name} | {g['wall_s']} | {g['task_s']} | {g['peak_rss_mb']} |")
    print("slowest tasks:")
    for t in sorted(tasks, key=lambda t: -t["seconds"])[:8]:
        print(f"  {t['task']}[{t['map_index']}] {t['state']} {t['seconds']} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
