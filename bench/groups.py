"""bench/groups: the daily DAG's ``encoder`` and ``replay`` groups, today's code against a
reference commit, on the same home, in one run (today = ``--today``, by default HEAD).

Each side gets its own copy of ``--home`` (a world whose day ``--ds`` the daily DAG has run:
``make replay-default`` builds the default world's) and runs the groups task by task through
Airflow (``airflow tasks test mspa_daily <task> <ds>``, the reference's DAG and library for the
reference, this tree's for today), one side after the other on the same machine. Reported:
each task's wall time, each group's, and the ratio; then whether the two replay reports agree
(``report.json`` without its timings and generation time) and the encoder gate's figures.

The LLM's answers in ``replay.u2a`` cost the same on both sides and do not depend on this
refactor; ``--acc-users`` (default 4) caps the test users it answers for, on both sides alike.

    python bench/groups.py --home var/default --ds 2026-11-20 --reference 4d8c913
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
TASKS = ("encoder.forward_day", "encoder.align", "replay.offline", "replay.prepare_examples",
         "replay.u2a", "replay.ann_parity", "replay.publish_report")
VOLATILE = ("generated_at", "timing")  # report keys that differ on every run (and below)


def _tasks(tree: Path, env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "airflow", "tasks", "list", "mspa_daily"],
                         env=env, cwd=tree, capture_output=True, text=True, check=True).stdout
    present = set(out.split())
    return [t for t in TASKS if t in present]


def run_side(name: str, tree: Path, home: Path, ds: str, config: Path, log: Path
             ) -> dict[str, float]:
    env = {**os.environ, "MSPA_ENV": "local", "MSPA_HOME": str(home),
           "AIRFLOW_HOME": str(home / "airflow"), "MSPA_CONFIG": str(config),
           "AIRFLOW__CORE__DAGS_FOLDER": str(tree / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(tree / "plugins"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": f"{tree}:{tree / 'plugins'}"}
    seconds = {}
    with log.open("a") as fh:
        for task in _tasks(tree, env):
            started = time.perf_counter()
            rc = subprocess.run([sys.executable, "-m", "airflow", "tasks", "test", "mspa_daily",
                                 task, ds], env=env, cwd=tree, stdout=fh,
                                stderr=subprocess.STDOUT).returncode
            seconds[task] = round(time.perf_counter() - started, 1)
            print(f"{name:>9} {task:<24} {seconds[task]:>7.1f} s", flush=True)
            if rc:
                raise SystemExit(f"{name}: {task} failed (rc {rc}); log: {log}")
    return seconds


def _report(home: Path, ds: str) -> dict:
    """The day's report without what differs on every run: the top-level timings, the ANN
    part's timing, and when each trend row was computed."""
    report = json.loads((home / "artifacts" / "reports" / "replay" / f"ds={ds}" /
                         "report.json").read_text())
    out = {k: v for k, v in report.items() if k not in VOLATILE}
    out["ann"] = {k: v for k, v in out.get("ann", {}).items() if k != "timing"}
    out["trend"] = sorted(json.dumps({k: v for k, v in r.items() if k != "computed_at"},
                                      sort_keys=True) for r in out.get("trend", []))
    return out


def _gate(home: Path, ds: str) -> dict:
    path = home / "artifacts" / "encoder_alignment" / f"ds={ds}" / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    return {k: manifest.get(k) for k in ("promoted", "reason", "fusion_weights")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=REPO / "var" / "default")
    parser.add_argument("--ds", default="2026-11-20")
    parser.add_argument("--reference", required=True, help="the commit to compare against")
    parser.add_argument("--today", default="HEAD",
                        help="the commit measured against it (default: HEAD)")
    parser.add_argument("--config", type=Path, default=REPO / "bench" / "scale_dag.toml")
    parser.add_argument("--acc-users", type=int, default=4)
    parser.add_argument("--scratch", type=Path, default=None)
    args = parser.parse_args()

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="mspa-groups-"))
    scratch.mkdir(parents=True, exist_ok=True)
    config = scratch / "bench.toml"
    config.write_text(args.config.read_text() + f"\n[replay]\nacc_max_users = {args.acc_users}\n")
    sides = {}
    for name, rev in (("reference", args.reference), ("today", args.today)):
        # each side from its commit, so that edits to the working tree cannot leak in
        sides[name] = scratch / name
        if not sides[name].exists():
            subprocess.run(["git", "worktree", "add", "--detach", str(sides[name]), rev],
                           cwd=REPO, check=True, capture_output=True)
    result = {"ds": args.ds, "reference": subprocess.run(
        ["git", "rev-parse", "--short", args.reference], cwd=REPO, capture_output=True,
        text=True).stdout.strip(), "today": subprocess.run(
        ["git", "rev-parse", "--short", args.today], cwd=REPO, capture_output=True,
        text=True).stdout.strip(), "acc_users": args.acc_users, "seconds": {}}
    homes = {}
    for name, tree in sides.items():
        homes[name] = scratch / f"{name}-home"
        shutil.rmtree(homes[name], ignore_errors=True)
        shutil.copytree(args.home, homes[name], symlinks=True)
        result["seconds"][name] = run_side(name, tree, homes[name], args.ds, config,
                                           scratch / f"{name}.log")
    for name in sides:
        secs = result["seconds"][name]
        result.setdefault("groups", {})[name] = {
            g: round(sum(v for t, v in secs.items() if t.startswith(g + ".")), 1)
            for g in ("encoder", "replay")}
    ref, now = (_report(homes[n], args.ds) for n in sides)
    result["report_equal"] = ref == now
    result["report_differs_in"] = sorted(k for k in set(ref) | set(now)
                                         if ref.get(k) != now.get(k))
    result["gate"] = {n: _gate(homes[n], args.ds) for n in sides}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "groups.json").write_text(json.dumps(result, indent=2))

    g = result["groups"]
    total = {n: g[n]["encoder"] + g[n]["replay"] for n in sides}
    print(f"\n| group | {result['reference']} (s) | {result['today']} (s) | today / reference |")
    print("| --- | --- | --- | --- |")
    for group in ("encoder", "replay"):
        print(f"| {group} | {g['reference'][group]} | {g['today'][group]} | "
              f"{g['today'][group] / g['reference'][group]:.2f} |")
    print(f"| both | {total['reference']:.1f} | {total['today']:.1f} | "
          f"{total['today'] / total['reference']:.2f} |")
    print(f"\nreplay report equal apart from timings: {result['report_equal']} "
          f"(differs in: {result['report_differs_in'] or 'nothing'})")
    print(f"encoder gate: {json.dumps(result['gate'])}")


if __name__ == "__main__":
    main()
