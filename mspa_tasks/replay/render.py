"""How a replay report shows: metrics in display order, the headline table as text (task
log, CLI), and the self-contained HTML page (tables with MSPA next to each baseline and the
delta vs the previous replayed day, plots inline: trend over ``replay.trend_days``, HR@K
curve, MSPA vs baselines; coverage and definitions) from ``templates/report.html.j2``.
"""

from __future__ import annotations

import base64
import io
import logging
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from mspa_tasks.replay.parts import MODELS, MSPA
from mspa_tasks.replay.segments import FAMILIES

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


# Display order and labels of the headline metrics (others follow, sorted).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Retrieval (the day's requests)", ("hr@",)),
    ("Ranking (the day's impressions)", ("auc_click", "uauc_click", "uauc_weighted_click",
                                         "auc_gift", "uauc_gift", "uauc_weighted_gift")),
    ("U2A (test users)", ("acc@", "recall@", "ndcg@")),
    ("Two-stage (MSPA shortlists, the champion reranks; test users' held-out tips on the day)",
     ("two_stage_", "first_stage_")),
    ("A2A (author triples)", ("a2a_alignment",)),
    ("Serving parity (sampled requests through the Milvus alias)", ("ann_",)),
)


HIGHER_IS_BETTER = True  # every metric here


def _section(metric: str) -> int:
    for i, (_, prefixes) in enumerate(SECTIONS):
        if any(metric == p or (p.endswith(("@", "_")) and metric.startswith(p))
               for p in prefixes):
            return i
    return len(SECTIONS)


def _metric_order(metric: str) -> tuple:
    name, _, k = metric.partition("@")
    head = name.split("_")[0]
    k_num = int(k) if k.isdigit() else 0
    return (_section(metric), head, k_num, metric)


def metric_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{metric: {model: row}}`` in display order."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: _metric_order(r["metric"])):
        table.setdefault(r["metric"], {})[r["model"]] = r
    return table


def _fmt(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) \
        else str(value)


def summary_text(report: dict[str, Any]) -> str:
    """The headline table as text (task log, CLI, closing notes)."""
    models = [m for m in report["models"]]
    lines = [f"WARNING: {w}" for w in report.get("warnings") or []]
    lines.append(f"{'metric':<24}" + "".join(f"{m:>12}" for m in models) + f"{'n':>8}")
    for metric, by_model in report["metrics"].items():
        if not any(m in by_model for m in models):
            continue
        n = next(iter(by_model.values()))["n"]
        lines.append(f"{metric:<24}" + "".join(
            f"{_fmt(by_model[m]['value']) if m in by_model else '-':>12}" for m in models)
            + f"{n:>8}")
    return "\n".join(lines)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


COLORS = {MSPA: "#1f77b4", "fused": "#2ca02c", "popularity": "#7f7f7f", "als": "#ff7f0e"}


def plots(report: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    table = report["metrics"]
    hr = sorted((int(m.split("@")[1]), m) for m in table
                if m.startswith("hr@") and m.split("@")[1].isdigit())
    if hr:
        fig, ax = plt.subplots(figsize=(5.2, 3.2))
        for model in MODELS:
            pts = [(k, table[m][model]["value"]) for k, m in hr if model in table[m]]
            ax.plot([k for k, _ in pts], [v for _, v in pts], marker="o", label=model,
                    color=COLORS[model])
        if report.get("n_authors"):
            ax.axvline(report["n_authors"], color="#bbb", ls=":", lw=1)
            ax.text(report["n_authors"], 0.02, " catalogue size", fontsize=7, color="#888")
        ax.set_xscale("log")
        ax.set_xlabel("K")
        ax.set_ylabel("HR@K")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"Hit rate @K, {report['ds']}")
        ax.legend(fontsize=8)
        out["hr_curve"] = _png(fig)

    headline = [m for m in ("auc_click", "uauc_click", "auc_gift", "uauc_gift",
                            f"hr@{report['config']['hr_k']}", "acc@4", "acc@10", "ndcg@10",
                            "a2a_alignment") if m in table]
    if headline:
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        width = 0.8 / len(MODELS)
        for i, model in enumerate(MODELS):
            vals = [table[m].get(model, {}).get("value") or 0.0 for m in headline]
            ax.bar([x + i * width for x in range(len(headline))], vals, width, label=model,
                   color=COLORS[model])
        ax.set_xticks([x + width for x in range(len(headline))], headline, fontsize=8,
                      rotation=20)
        ax.set_ylim(0, 1.0)
        ax.set_title("MSPA vs baselines")
        ax.legend(fontsize=8)
        out["versus"] = _png(fig)

    trend_metrics = [m for m in ("auc_click", "uauc_click", f"hr@{report['config']['hr_k']}",
                                 "acc@4") if m in table]
    days = sorted({r["ds"] for r in report["trend"]})
    if trend_metrics and days:
        fig, axes = plt.subplots(1, len(trend_metrics), figsize=(3.0 * len(trend_metrics), 2.8),
                                 squeeze=False)
        for ax, metric in zip(axes[0], trend_metrics, strict=True):
            for model in MODELS:
                pts = sorted((r["ds"], r["value"]) for r in report["trend"]
                             if r["metric"] == metric and r["model"] == model
                             and r["value"] is not None)
                if pts:
                    ax.plot([d[5:] for d, _ in pts], [v for _, v in pts], marker="o",
                            label=model, color=COLORS[model])
            ax.set_title(metric, fontsize=9)
            ax.tick_params(axis="x", labelsize=7, rotation=45)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"Trend, last {report['config']['trend_days']} days "
                     f"({len(days)} replayed)", fontsize=9)
        fig.tight_layout()
        out["trend"] = _png(fig)
    return out


def _rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics table as rows for the template: a section title row before each section,
    then one row per metric with its formatted cells (``best`` marks the best model)."""
    table = report["metrics"]
    rows: list[dict[str, Any]] = []
    current = None
    for metric, by_model in table.items():
        if metric.startswith("chance@"):
            continue  # shown in the chance column of its acc@m row
        section = _section(metric)
        if section != current:
            current = section
            rows.append({"section": SECTIONS[section][0] if section < len(SECTIONS)
                         else "Other"})
        values = [by_model[m]["value"] for m in MODELS if m in by_model
                  and by_model[m]["value"] is not None]
        best = max(values) if values else None
        cells = [_cell(by_model.get(m), best, len(values) > 1) for m in MODELS]
        ref = table.get(metric.replace("acc@", "chance@"), {}).get("chance") \
            if metric.startswith("acc@") else None
        mspa = by_model.get(MSPA)
        delta = None if not mspa else mspa.get("delta")
        rows.append({"metric": metric, "cells": cells, "has_mspa": bool(mspa), "delta": delta,
                     "delta_class": "muted" if not delta else "up" if delta > 0 else "down",
                     "chance": _fmt(ref["value"]) if ref else "",
                     "n": next(iter(by_model.values()))["n"]})
    return rows


def _cell(r: dict[str, Any] | None, best: float | None, several: bool) -> dict[str, Any]:
    """One model's cell: value, 95% interval, and for a baseline whether its difference to
    MSPA is significant (paired bootstrap) and in which direction."""
    v = None if r is None else r.get("value")
    low, high = (None, None) if r is None else (r.get("low"), r.get("high"))
    interval = "" if low is None or high is None or low != low else \
        f"[{_fmt(low, 3)}, {_fmt(high, 3)}]"
    sig = None if r is None else r.get("significant")
    verdict = "" if sig is None else "tie" if not sig else \
        "better" if (r.get("diff") or 0) > 0 else "worse"
    return {"text": _fmt(v), "interval": interval, "best": v is not None and v == best
            and several, "verdict": verdict}


def segment_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per segment family, the segment rows (metric, per-model cells, counts) in order."""

    by: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in report.get("segments", []):
        by.setdefault((r["segment"], r["metric"]), {})[r["model"]] = r
    counts = report.get("segment_counts", {})
    rows: list[dict[str, Any]] = []
    for family, names in FAMILIES.items():
        rows.append({"section": family})
        for seg in names:
            for (s, metric), by_model in sorted(by.items(), key=lambda kv: _metric_order(kv[0][1])):
                if s != seg:
                    continue
                values = [x["value"] for x in by_model.values() if x["value"] is not None]
                best = max(values) if values else None
                first = next(iter(by_model.values()))
                rows.append({"segment": seg, "metric": metric,
                             "cells": [_cell(by_model.get(m), best, len(values) > 1)
                                       for m in MODELS],
                             "n": first["n"], "users": first.get("users", ""),
                             "requests": counts.get(seg, {}).get("requests", "")})
    return rows


def verdicts(report: dict[str, Any]) -> list[str]:
    """Plain sentences: per segment and metric, where MSPA wins, loses or ties against each
    baseline (a paired 95% interval of the difference that excludes 0, or not)."""
    out = []
    overall = [r for by_model in report["metrics"].values() for r in by_model.values()]
    for r in [*overall, *report.get("segments", [])]:
        if r["model"] == MSPA or r.get("significant") is None:
            continue
        verdict = ("ties with" if not r["significant"] else
                   "loses to" if r["diff"] > 0 else "beats")
        out.append(f"{r.get('segment', 'all')}: MSPA {verdict} {r['model']} on {r['metric']} "
                   f"(difference {r['model']} - mspa {r['diff']:+.3f}, 95% "
                   f"[{r['diff_low']:+.3f}, {r['diff_high']:+.3f}], n={r['n']})")
    return out


SIGN = {"better": "▲", "worse": "▼", "tie": "≈", "": ""}


def segments_markdown(report: dict[str, Any], metrics: tuple[str, ...] | None = None) -> str:
    """The per-segment table as Markdown (CLI, closing notes): each model's value with its
    95% interval; a baseline's ▲/▼/≈ says whether it is significantly above, below or tied
    with MSPA (paired bootstrap). ``metrics`` restricts the rows (default: all)."""
    lines = ["| segment | metric | " + " | ".join(MODELS) + " | users | requests | n |",
             "| --- | --- | " + " | ".join("---" for _ in MODELS) + " | ---: | ---: | ---: |"]
    for row in segment_rows(report):
        if "section" in row or (metrics and row["metric"] not in metrics):
            continue
        cells = [f"{c['text']} {c['interval']} {SIGN[c['verdict']]}".strip()
                 for c in row["cells"]]
        lines.append(f"| {row['segment']} | {row['metric']} | " + " | ".join(cells)
                     + f" | {row['users']} | {row['requests']} | {row['n']} |")
    return "\n".join(lines)


@cache
def _templates() -> jinja2.Environment:
    # Autoescape: every value a report shows (collection names, notes, ids) is escaped by
    # the template engine, not by hand at each sink. A part may lack a key (a day with no
    # ANN part): missing keys render empty, as the f-strings did with .get().
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=True, undefined=jinja2.ChainableUndefined,
                              keep_trailing_newline=True)


def render_html(report: dict[str, Any]) -> str:
    """The report page, from ``templates/report.html.j2``."""
    n_authors = report.get("n_authors") or 0
    return _templates().get_template("report.html.j2").render(
        report=report, models=MODELS, rows=_rows(report), images=plots(report),
        segments=segment_rows(report), artifacts=report.get("artifacts", {}),
        big_ks=[k for k in report["config"]["hr_ks"] if k >= n_authors], n_authors=n_authors,
        ann=report.get("ann", {}), cov=report.get("coverage", {}),
        prev=report.get("previous_ds") or "none")
