"""The daily DAG under Airflow's CeleryExecutor: PostgreSQL metadata DB, Redis (or RabbitMQ)
broker, an API server, a scheduler, a DAG processor and N Celery workers on this machine.

It runs a backfill (``airflow backfill create``) of ``--from``..``--to`` through the
scheduler and the workers, optionally clears the middle day once it succeeded (a day rerun in
the middle of the backfill), waits for every backfill run, and reports which worker ran
which task: each worker writes task logs under its own folder (``logs/<worker>/``), so a
task's log file says where it ran. Everything it starts is stopped when it ends.

    python scripts/celery_stack.py --home var/celery [--from 2026-11-18 --to 2026-11-20]
        [--workers 2] [--config extra.toml] [--rerun-middle]

Prints a summary and writes it to ``<home>/celery-run.json``. ``make celery`` runs it.
This is how the pipeline grows past one machine: the same DAG, Airflow's own executor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAG = "mspa_daily"
OUTPUTS = ("sessions", "preference_texts", "author_texts", "author_vectors")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_database(url: str) -> None:
    """Create the metadata database if the server lacks it (trust auth, local server)."""
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": target.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = args.home.resolve()
        self.logs = self.home / "logs"
        self.procs: dict[str, subprocess.Popen] = {}
        self.seen_deadlines: dict[str, dict[str, Any]] = {}
        self.port = _free_port()
        self.queue = f"mspa-{secrets.token_hex(4)}"  # never shares a broker queue
        self.env = {
            **os.environ,
            "MSPA_ENV": "local", "MSPA_HOME": str(self.home / "mspa"),
            "AIRFLOW_HOME": str(self.home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": args.metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": args.broker,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + args.metadata_url,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # the DAG files do not change while the stack runs: parse each once, not every 30 s
            # (each parse imports the library; on 2 cores that competed with the tasks)
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "1800",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "airflow"),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        }
        if args.config:
            self.env["MSPA_CONFIG"] = str(Path(args.config).resolve())

    # -- processes ---------------------------------------------------------------------
    def run(self, *cmd: str, timeout: int = 600) -> str:
        result = subprocess.run(list(cmd), env=self.env, cwd=REPO, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                               f"{(result.stdout + result.stderr)[-4000:]}")
        return result.stdout

    def start(self, name: str, *cmd: str, env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = (self.logs / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(list(cmd), env={**self.env, **(env or {})}, cwd=REPO,
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        print(f"  started {name} (pid {self.procs[name].pid}, log {out.name})", flush=True)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    # -- steps ------------------------------------------------------------------------
    def prepare(self) -> None:
        _ensure_database(self.args.metadata_url)
        print(f"== metadata DB {sa.make_url(self.args.metadata_url).render_as_string()}, "
              f"broker {self.args.broker}, queue {self.queue}", flush=True)
        self.run(str(BIN / "airflow"), "db", "migrate")
        for name, slots in (("mspa_compose", "2"), ("mspa_milvus", "1"), ("mspa_gpu", "1")):
            self.run(str(BIN / "airflow"), "pools", "set", name, slots, name)
        if not (self.home / "mspa" / "artifacts" / "world" / "summary.json").exists():
            self.run(str(BIN / "python"), "-m", "mspa_tasks", "seed-world", "--preset",
                     self.args.preset, "--end-ds", self.args.to_ds)

    def launch(self) -> None:
        airflow = str(BIN / "airflow")
        self.start("api-server", airflow, "api-server", "--port", str(self.port))
        self.start("scheduler", airflow, "scheduler")
        self.start("dag-processor", airflow, "dag-processor")
        for i in range(1, self.args.workers + 1):
            name = f"worker{i}"
            self.start(name, airflow, "celery", "worker", "--queues", self.queue,
                       "--concurrency", "1", "--celery-hostname", f"{name}@%h",
                       "--skip-serve-logs",
                       env={"AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / name)})
        self.wait(self.api_ready, 180, "the API server to answer")
        self.wait(self.dag_serialized, 300, f"the DAG processor to parse {DAG}")

    def api_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health",
                                        timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def engine(self) -> sa.Engine:
        if not hasattr(self, "_engine"):
            self._engine = sa.create_engine(self.args.metadata_url)
        return self._engine

    def dag_serialized(self) -> bool:
        with self.engine().connect() as conn:
            return conn.execute(sa.text("SELECT 1 FROM serialized_dag WHERE dag_id = :d"),
                                {"d": DAG}).first() is not None

    def wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f}s for {what}")
            time.sleep(2)

    def backfill_runs(self) -> dict[str, dict[str, Any]]:
        with self.engine().connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT logical_date, state, start_date, end_date, run_id FROM dag_run "
                "WHERE dag_id = :d AND run_type = 'backfill' ORDER BY logical_date"),
                {"d": DAG}).all()
        return {r.logical_date.date().isoformat(): {
            "state": r.state, "run_id": r.run_id,
            "seconds": round((r.end_date - r.start_date).total_seconds(), 1)
            if r.start_date and r.end_date else None} for r in rows}

    def watch_deadlines(self) -> None:
        """Remember every deadline seen on a backfill run: the scheduler sets one when a run
        is created and prunes it when the run succeeds in time."""
        for d in self.deadlines():
            self.seen_deadlines.setdefault(d["ds"], d)

    def deadlines(self) -> list[dict[str, Any]]:
        """The DeadlineAlert deadlines of the backfill runs now in the metadata DB."""
        with self.engine().connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT r.logical_date, d.deadline_time, d.missed FROM deadline d "
                "JOIN dag_run r ON r.id = d.dagrun_id WHERE r.dag_id = :d "
                "AND r.run_type = 'backfill' ORDER BY r.logical_date"), {"d": DAG}).all()
        return [{"ds": r.logical_date.date().isoformat(), "deadline": r.deadline_time.isoformat(),
                 "missed": r.missed} for r in rows]

    def snapshot(self, ds: str) -> dict[str, Any]:
        """What a day published: each dataset's manifest counts and files, its replay rows."""
        from mspa_tasks.config import load_settings
        from mspa_tasks.warehouse import make_engine

        settings = load_settings("local", home=self.home / "mspa")
        root = self.home / "mspa" / "artifacts"
        out: dict[str, Any] = {}
        for dataset in OUTPUTS:
            manifest = json.loads((root / dataset / f"ds={ds}" / "manifest.json").read_text())
            out[dataset] = {"counts": manifest.get("counts"),
                            "files": sorted(f["sha256"] for f in manifest["files"].values())}
        engine = make_engine(settings.warehouse_url)
        with engine.connect() as conn:
            out["replay_metrics_rows"] = conn.execute(sa.text(
                "SELECT COUNT(*) FROM replay_metrics WHERE ds = :ds"), {"ds": ds}).scalar_one()
            out["preference_text_rows"] = conn.execute(sa.text(
                "SELECT COUNT(*) FROM preference_texts WHERE ds = :ds"), {"ds": ds}).scalar_one()
        engine.dispose()
        report = root / "reports" / "replay" / f"ds={ds}" / "report.json"
        out["trend_days"] = sorted({r["ds"] for r in json.loads(report.read_text())["trend"]})
        return out

    def where_tasks_ran(self) -> dict[str, list[str]]:
        """worker -> 'ds task_id[map]' of every task log file under its own log folder."""
        ran: dict[str, list[str]] = {}
        for i in range(1, self.args.workers + 1):
            name = f"worker{i}"
            folder = self.logs / name / f"dag_id={DAG}"
            ran[name] = sorted(
                " ".join(part.split("=", 1)[1] for part in p.relative_to(folder).parent.parts)
                for p in folder.rglob("*.log")) if folder.exists() else []
        return ran


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=REPO / "var" / "celery")
    parser.add_argument("--from", dest="from_ds", default="2026-11-18")
    parser.add_argument("--to", dest="to_ds", default="2026-11-20")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--config", default=None, help="MSPA_CONFIG for every process")
    parser.add_argument("--metadata-url", default=os.environ.get(
        "MSPA_CELERY_METADATA_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/mspa_airflow"))
    parser.add_argument("--broker", default=os.environ.get("MSPA_CELERY_BROKER",
                                                           "redis://127.0.0.1:6379/0"))
    parser.add_argument("--rerun-middle", action="store_true",
                        help="clear the day before the last once it succeeded (the middle "
                             "day of three); check it republishes "
                             "the same outputs")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--fresh", action="store_true", help="delete --home first")
    args = parser.parse_args(argv)
    if args.fresh and args.home.exists():
        shutil.rmtree(args.home)
    days = []
    day = dt.date.fromisoformat(args.from_ds)
    while day <= dt.date.fromisoformat(args.to_ds):
        days.append(day.isoformat())
        day += dt.timedelta(days=1)
    stack = Stack(args)
    summary: dict[str, Any] = {"days": days, "workers": args.workers, "broker": args.broker}
    started = time.monotonic()
    try:
        stack.prepare()
        stack.launch()
        airflow = str(BIN / "airflow")
        stack.run(airflow, "dags", "unpause", DAG)
        print(stack.run(airflow, "backfill", "create", "--dag-id", DAG, "--from-date",
                        f"{days[0]}T00:00:00+00:00", "--to-date", f"{days[-1]}T23:59:59+00:00",
                        "--max-active-runs", "1").strip()[-600:], flush=True)
        # the day rerun while the backfill goes on: the one before the last (the middle of a
        # three-day backfill), so a later run is still to come when it is cleared
        middle = days[-2] if len(days) >= 2 else days[0]
        if args.rerun_middle and len(days) >= 2:
            def middle_done() -> bool:
                stack.watch_deadlines()
                return stack.backfill_runs().get(middle, {}).get("state") == "success"

            stack.wait(middle_done, args.timeout, f"the backfill run of {middle}")
            summary["middle_before"] = stack.snapshot(middle)
            print(f"== {middle} succeeded; clearing it while the backfill goes on", flush=True)
            stack.run(airflow, "tasks", "clear", DAG, "--start-date", f"{middle}T00:00:00+00:00",
                      "--end-date", f"{middle}T23:59:59+00:00", "--yes")
            summary["middle_cleared_while"] = stack.backfill_runs()

        def finished() -> bool:
            stack.watch_deadlines()
            runs = stack.backfill_runs()
            if any(r["state"] == "failed" for r in runs.values()):
                raise RuntimeError(f"a backfill run failed: {runs}")
            return len(runs) == len(days) and all(r["state"] == "success"
                                                  for r in runs.values())

        stack.wait(finished, args.timeout, "every backfill run to succeed")
        summary["runs"] = stack.backfill_runs()
        summary["outputs"] = {ds: stack.snapshot(ds) for ds in days}
        if "middle_before" in summary:
            summary["middle_after"] = summary["outputs"][middle]
        summary["tasks_by_worker"] = stack.where_tasks_ran()
        summary["deadlines_seen"] = list(stack.seen_deadlines.values())
        summary["deadlines_left"] = stack.deadlines()
    finally:
        stack.stop()
    summary["seconds"] = round(time.monotonic() - started, 1)
    (args.home / "celery-run.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"== backfill {days[0]}..{days[-1]} under CeleryExecutor, {args.workers} workers: "
          f"{summary['seconds']}s")
    for ds, run in summary["runs"].items():
        print(f"  {ds}  {run['state']}  {run['seconds']}s")
    for worker, tasks in summary["tasks_by_worker"].items():
        print(f"  {worker}: {len(tasks)} task runs")
    digest = hashlib.sha256(json.dumps(summary["outputs"], sort_keys=True).encode()).hexdigest()
    print(f"  outputs digest {digest[:12]} (summary: {args.home / 'celery-run.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
