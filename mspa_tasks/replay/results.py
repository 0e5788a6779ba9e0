"""The replay report of ``ds``: merge the parts, record them, publish JSON and HTML.

Writes, in this order (the JSON last: its presence marks a complete report, and the UI lists
reports by it):

1. ``replay_metrics`` rows of ``ds`` (delete the day, insert it: a rerun replaces the day);
2. ``reports/replay/ds=<ds>/report.html`` (:mod:`.render`);
3. ``reports/replay/ds=<ds>/report.json``: the same figures, machine-readable.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from mspa_tasks.artifacts import ArtifactNotFound, ArtifactStore
from mspa_tasks.config import Settings
from mspa_tasks.replay.parts import BASELINES, FUSED, MODELS, MSPA, PARTS, part_key
from mspa_tasks.replay.render import metric_table, render_html, summary_text, verdicts
from mspa_tasks.run import DayRun
from mspa_tasks.warehouse import execute_many, fetch_arrow, make_engine, run_sql

log = logging.getLogger(__name__)

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


class ReportIncomplete(RuntimeError):
    """A part of the replay is missing; the message names the task to rerun."""


def report_prefix(settings: Settings, ds: str) -> str:
    return f"{settings.replay.report_prefix}/ds={ds}"


def list_reports(store: ArtifactStore, settings: Settings) -> list[str]:
    """The days with a complete report, newest first."""
    days = set()
    for key in store.list(settings.replay.report_prefix + "/"):
        parts = key.split("/")
        if parts[-1] == REPORT_JSON and parts[-2].startswith("ds="):
            days.add(parts[-2][3:])
    return sorted(days, reverse=True)


class ReportUnreadable(ValueError):
    """A day's ``report.json`` exists but is not a readable report (truncated, corrupt)."""


def read_report(store: ArtifactStore, settings: Settings, ds: str) -> dict[str, Any]:
    """The report of ``ds``; :class:`ReportUnreadable` names the file and the fix when it
    is there but broken (``ArtifactNotFound`` when it is not there)."""
    key = f"{report_prefix(settings, ds)}/{REPORT_JSON}"
    try:
        body = json.loads(store.get_bytes(key).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportUnreadable(f"{store.uri(key)} is not a readable report ({exc}); rerun that "
                               f"day's replay to write it again (make replay DS={ds})") from None
    if not isinstance(body, dict):
        raise ReportUnreadable(f"{store.uri(key)} holds a JSON {type(body).__name__}, not a "
                               f"report; rerun that day's replay (make replay DS={ds})")
    return body


def _kind(model: str) -> str:
    if model == FUSED:
        return "fused"
    return "mspa" if model == MSPA else "baseline" if model in BASELINES else "reference"


def merge_parts(store: ArtifactStore, settings: Settings, ds: str) -> dict[str, Any]:
    parts = {}
    for part in PARTS:
        try:
            parts[part] = json.loads(store.get_text(part_key(settings, ds, part)))
        except ArtifactNotFound as exc:
            raise ReportIncomplete(f"replay part {part!r} of {ds} is missing; rerun the "
                                   f"replay task {part!r} for {ds}") from exc
    return parts


def record_metrics(warehouse_url: str, ds: str, rows: list[dict[str, Any]],
            versions: dict[str, str]) -> list[dict[str, Any]]:
    """Replace ``ds``'s rows in ``replay_metrics``; return the previous day's rows."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    engine = make_engine(warehouse_url)
    try:
        with engine.begin() as conn:
            run_sql(conn, "ddl/replay.sql")
            run_sql(conn, "replay/delete_metrics.sql", {"ds": ds})
            execute_many(conn, "replay/insert_metric.sql", [
                {"ds": ds, "metric": r["metric"], "model": r["model"], "kind": _kind(r["model"]),
                 "value": r["value"], "n": r["n"],
                 "model_version": r.get("model_version") or versions.get(r["model"], ""),
                 "computed_at": now} for r in rows])
    finally:
        engine.dispose()
    return rows


def history(warehouse_url: str, first_ds: str, last_ds: str) -> list[dict[str, Any]]:
    engine = make_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            run_sql(conn, "ddl/replay.sql")
            return fetch_arrow(conn, "replay/select_metrics.sql",
                               {"first_ds": first_ds, "last_ds": last_ds}).to_pylist()
    finally:
        engine.dispose()


def coverage_warnings(coverage: dict[str, Any]) -> list[str]:
    """What a reader must know before reading any figure: a day whose offline replay scored
    no impression has no figure to read.

    >>> coverage_warnings({"impressions": 120, "impressions_scored": 0})[0][:47]
    'no impression of this day was scored (0 of 120)'
    >>> coverage_warnings({"impressions": 120, "impressions_scored": 80})
    []
    """
    total, scored = coverage.get("impressions"), coverage.get("impressions_scored")
    if total is None:
        return []
    if not total:
        return ["the warehouse holds no impression of this day: no offline figure could be "
                "computed (are impressions loaded for it?)"]
    if not scored:
        return [f"no impression of this day was scored (0 of {total}): none had both a user "
                "with a preference vector and a kept author, so every offline figure is "
                "empty; check the day before's compose and vectors"]
    return []


@dataclass(frozen=True)
class ReportPublished:
    """The published report: its content (the JSON's) and where the HTML page is."""

    report: dict[str, Any]
    html_uri: str

    def summary(self) -> dict[str, Any]:
        return {"ds": self.report["ds"], "report": self.html_uri}


def publish_report(run: DayRun) -> ReportPublished:
    """Steps 1-3 of the module doc. Returns the report and its page."""
    ds, warehouse_url, store, settings = run.ds, run.url, run.artifacts, run.settings
    cfg = settings.replay
    parts = merge_parts(store, settings, ds)
    rows = [r for p in PARTS for r in parts[p].get("metrics", [])]
    versions = {MSPA: parts["u2a"].get("champion", "")}
    record_metrics(warehouse_url, ds, rows, versions)

    first = (dt.date.fromisoformat(ds) - dt.timedelta(days=cfg.trend_days - 1)).isoformat()
    past = history(warehouse_url, first, ds)
    days = sorted({r["ds"] for r in past})
    previous = max((d for d in days if d < ds), default=None)
    prev_values = {(r["metric"], r["model"]): r["value"] for r in past if r["ds"] == previous}
    table = metric_table(rows)
    for metric, by_model in table.items():
        for model, r in by_model.items():
            before = prev_values.get((metric, model))
            r["previous"] = before
            r["delta"] = (None if before is None or r["value"] is None
                          else r["value"] - before)
    offline = parts["offline"]
    report = {
        "ds": ds, "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "previous_ds": previous, "models": list(MODELS), "champion": versions[MSPA],
        "metrics": table, "coverage": offline.get("coverage", {}),
        "n_authors": offline.get("n_authors"), "a2a": offline.get("a2a"),
        "model_day": offline.get("model_day"), "offline_note": offline.get("note"),
        "warnings": (coverage_warnings(offline.get("coverage", {}))
                     + parts["u2a"].get("warnings", [])),
        "segments": offline.get("segments", []),
        "segment_counts": offline.get("segment_counts", {}),
        "bootstrap": offline.get("bootstrap", {}),
        "artifacts": {**offline.get("artifacts", {}),
                      **{f"u2a {k}": v for k, v in parts["u2a"].get("artifacts", {}).items()},
                      **({"ann": f"collection {parts['ann']['collection']} of "
                                 f"{parts['ann'].get('model_day')}"}
                         if parts["ann"].get("collection") else {})},
        "ann": {k: v for k, v in parts["ann"].items() if k not in ("metrics", "ds", "part")},
        "u2a": {k: v for k, v in parts["u2a"].items() if k not in ("metrics", "ds", "part")},
        "timing": {p: parts[p].get("timing") for p in PARTS},
        "trend": [r for r in past if r["model"] in MODELS],
        "config": {"watched": cfg.watched, "hr_ks": list(cfg.hr_ks), "hr_k": cfg.hr_k,
                   "topk_ks": list(cfg.topk_ks), "trend_days": cfg.trend_days,
                   "cold_days": cfg.cold_days, "bootstrap": cfg.bootstrap},
    }
    prefix = report_prefix(settings, ds)
    html = store.put_text(f"{prefix}/{REPORT_HTML}", render_html(report))
    uri = store.put_text(f"{prefix}/{REPORT_JSON}",
                         json.dumps(report, indent=2, default=str) + "\n")
    log.info("replay report of %s: %s (%d metric rows; previous day %s)", ds, uri, len(rows),
             previous or "none")
    log.info("replay %s summary:\n%s", ds, summary_text(report))
    for warning in report["warnings"]:
        log.warning("replay %s: %s", ds, warning)
    if report["segments"]:
        log.info("replay %s, MSPA against each baseline (paired bootstrap, 95%%):\n%s", ds,
                 "\n".join(verdicts(report)))
    elif report["offline_note"]:
        log.info("replay %s: %s", ds, report["offline_note"])
    return ReportPublished(report, html)
