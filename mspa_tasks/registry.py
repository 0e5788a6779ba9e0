"""The model registries and the recommender's promotion gate: table ``model_registry``
(MSPA's aligned LLM) and ``encoder_registry`` (the text encoder aligned to the interactions,
:mod:`mspa_tasks.vectors.alignment`), the same columns and rules; every function takes the
table (``table=``, the recommender's by default).

Exactly one version is the **champion**: the model the composer writes with and the one every
new version is measured against. The first retraining run registers the configured base
model as the initial champion. A new recommender is promoted only if, on the same validation
examples in the same run and for every ``m`` (:func:`recommender_gate`): its Acc@m interval
over users lies above chance (1/m), so a model that picks no better than a coin never serves,
the first trained champion included; it is not significantly below the champion (paired
interval); and its Acc@m is not worse than the champion's by more than the tolerance. The
decision, its reason and both models' figures are stored.
Promotion (retire the old champion, crown the new one) is one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mspa_tasks.warehouse import fetch_arrow, make_engine, run_sql

MODEL_REGISTRY = "model_registry"
ENCODER_REGISTRY = "encoder_registry"
TABLES = (MODEL_REGISTRY, ENCODER_REGISTRY)


def _table(table: str) -> str:
    if table not in TABLES:  # the name is formatted into SQL: only the known ones
        raise ValueError(f"no registry {table!r}; known: {list(TABLES)}")
    return table


@dataclass(frozen=True)
class ModelVersion:
    version: str
    ds: str | None
    base_version: str | None
    artifact_uri: str
    model_ref: str
    status: str
    reason: str
    metrics: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelVersion:
        return cls(row["version"], row["ds"], row["base_version"], row["artifact_uri"],
                   row["model_ref"], row["status"], row["reason"], json.loads(row["metrics"]))


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def prepare_registry(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/align.sql")
    engine.dispose()


def list_models(warehouse_url: str, table: str = MODEL_REGISTRY) -> list[ModelVersion]:
    """Every registered version, newest first ([] before the first retraining)."""
    engine = make_engine(warehouse_url)
    try:
        if not sa.inspect(engine).has_table(_table(table)):
            return []
        with engine.connect() as conn:
            rows = fetch_arrow(conn, "align/select_models.sql", table=table).to_pylist()
    finally:
        engine.dispose()
    return [ModelVersion.from_row(r) for r in rows]


def champion(warehouse_url: str, table: str = MODEL_REGISTRY) -> ModelVersion | None:
    """The serving champion, or None before the first retraining run."""
    engine = make_engine(warehouse_url)
    try:
        if not sa.inspect(engine).has_table(_table(table)):
            return None
        with engine.connect() as conn:
            rows = fetch_arrow(conn, "align/select_champion.sql", table=table).to_pylist()
    finally:
        engine.dispose()
    return ModelVersion.from_row(rows[0]) if rows else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def register(warehouse_url: str, version: ModelVersion, table: str = MODEL_REGISTRY) -> None:
    """Insert ``version`` (replacing a row of the same version: a retried run); when its
    status is ``champion``, retire the previous champion in the same transaction."""
    now = _now()
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/align.sql")
        if version.status == "champion":
            run_sql(conn, "align/retire_champion.sql",
                    {"version": version.version, "decided_at": now,
                     "reason": f"replaced by {version.version}"}, table=_table(table))
        run_sql(conn, "align/upsert_model.sql", {
            "version": version.version, "ds": version.ds, "base_version": version.base_version,
            "artifact_uri": version.artifact_uri, "model_ref": version.model_ref,
            "status": version.status, "reason": version.reason,
            "metrics": json.dumps(version.metrics, sort_keys=True), "created_at": now,
            "decided_at": now}, table=_table(table))
    engine.dispose()


def promote(warehouse_url: str, version: str, reason: str,
            table: str = MODEL_REGISTRY) -> ModelVersion:
    """Make a registered version the champion by hand (roll back or forward), retiring the
    current one in the same transaction. Rejected versions can be promoted this way too:
    the reason is recorded."""
    known = {m.version: m for m in list_models(warehouse_url, table)}
    if version not in known:
        raise KeyError(f"no model version {version!r}; registered: {sorted(known) or 'none'}")
    now = _now()
    engine = make_engine(warehouse_url)
    with engine.begin() as conn:
        run_sql(conn, "ddl/align.sql")
        run_sql(conn, "align/retire_champion.sql", {"version": version, "decided_at": now,
                                                    "reason": f"replaced by {version}: {reason}"},
                table=_table(table))
        run_sql(conn, "align/promote_model.sql", {"version": version, "decided_at": now,
                                                  "reason": f"promoted by hand: {reason}"},
                table=table)
    engine.dispose()
    return champion(warehouse_url, table)


def decide(new: dict[str, float], champ: dict[str, float], tolerance: float,
           keys: list[str] | None = None) -> Decision:
    """Promote when every ``acc@m`` of ``new`` (or every figure of ``keys``, higher is
    better) is at least the champion's minus ``tolerance``. A figure that could not be
    measured (NaN, None) rejects.

    >>> decide({"acc@4": 0.30, "acc@10": 0.12}, {"acc@4": 0.31, "acc@10": 0.12}, 0.02).promote
    True
    >>> d = decide({"acc@4": 0.25, "acc@10": 0.12}, {"acc@4": 0.30, "acc@10": 0.10}, 0.02)
    >>> d.promote, d.reason
    (False, 'rejected: acc@4 0.2500 < champion 0.3000 - tolerance 0.0200; acc@10 0.1200 vs champion 0.1000 ok')
    """
    if keys is None:
        keys = sorted((k for k in champ if k.startswith("acc@")),
                      key=lambda k: int(k.split("@")[1]))
    if not keys or set(keys) - set(new) or set(keys) - set(champ):
        raise ValueError(f"cannot compare: new has {sorted(new)}, champion has {sorted(champ)}")
    parts, worse = [], False
    for k in keys:
        if any(v is None or v != v for v in (new[k], champ[k])):
            worse = True
            parts.append(f"{k} not measured (new {new[k]}, champion {champ[k]})")
        elif new[k] < champ[k] - tolerance - 1e-12:
            worse = True
            parts.append(f"{k} {new[k]:.4f} < champion {champ[k]:.4f} - tolerance {tolerance:.4f}")
        else:
            parts.append(f"{k} {new[k]:.4f} vs champion {champ[k]:.4f} ok")
    return Decision(not worse, ("rejected: " if worse else "promoted: ") + "; ".join(parts))


def _figure(r: dict[str, Any]) -> str:
    return f"acc@{r['m']} {r['value']:.4f} [{r['low']:.4f}, {r['high']:.4f}]"


def recommender_gate(intervals: list[dict[str, Any]], tolerance: float) -> Decision:
    """The recommender's promotion rule (module doc) over the evaluation's interval rows
    (:func:`mspa_tasks.llm.ranking.accuracy_intervals` with ``new`` as the reference: the
    champion's ``diff`` is champion - new). Every ``m`` must pass; the reason names each
    figure, its interval and the bound it was held to.

    >>> row = lambda model, v, lo, hi, d=None: {"metric": "acc", "segment": "all", "m": 4,
    ...     "model": model, "value": v, "low": lo, "high": hi, "diff": d,
    ...     "diff_low": None if d is None else d - 0.1, "diff_high": None if d is None else d + 0.1}
    >>> recommender_gate([row("new", 0.30, 0.20, 0.40), row("champion", 0.05, 0.0, 0.1, -0.25)],
    ...                  0.02).reason
    'rejected: acc@4 0.3000 [0.2000, 0.4000]: its lower bound does not clear chance 0.2500'
    >>> recommender_gate([row("new", 0.50, 0.40, 0.60), row("champion", 0.05, 0.0, 0.1, -0.45)],
    ...                  0.02).promote
    True
    """
    acc = {(int(r["m"]), r["model"]): r for r in intervals
           if r["metric"] == "acc" and r["segment"] == "all"}
    sizes = sorted({m for m, _ in acc})
    if not sizes or any((m, who) not in acc for m in sizes for who in ("new", "champion")):
        raise ValueError(f"cannot decide: Acc@m intervals of both models needed, have "
                         f"{sorted(acc)}")
    parts, refused = [], False
    for m in sizes:
        new, champ = acc[m, "new"], acc[m, "champion"]
        chance = 1 / m
        if any(v is None or v != v for v in (new["value"], new["low"], champ["value"])):
            refused = True
            parts.append(f"acc@{m} not measured (new {new['value']}, champion "
                         f"{champ['value']})")
        elif not new["low"] > chance:
            refused = True
            parts.append(f"{_figure(new)}: its lower bound does not clear chance {chance:.4f}")
        elif champ.get("diff_low") is not None and champ["diff_low"] > 0:
            refused = True
            parts.append(f"{_figure(new)}: significantly below the champion's "
                         f"{champ['value']:.4f} (champion - new {champ['diff']:+.4f} "
                         f"[{champ['diff_low']:+.4f}, {champ['diff_high']:+.4f}])")
        elif new["value"] < champ["value"] - tolerance - 1e-12:
            refused = True
            parts.append(f"{_figure(new)} < champion {champ['value']:.4f} - tolerance "
                         f"{tolerance:.4f}")
        else:
            parts.append(f"{_figure(new)} clears chance {chance:.4f}; vs champion "
                         f"{champ['value']:.4f} ok")
    return Decision(not refused, ("rejected: " if refused else "promoted: ") + "; ".join(parts))
