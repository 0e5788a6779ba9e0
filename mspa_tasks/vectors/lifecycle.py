"""Step 3 of the nightly refresh and what follows: the alias swap in one ``alter_alias``
(only onto a ``validated`` collection, only forward in ``ds``: a past day's collection never
moves consumers back), retention (:func:`retention_plan`), rollback (recorded with its
reason) and the list of versions. A milvus-lite file is held by one process at a time: every
function opens its client and closes it before returning.
"""

from __future__ import annotations

import logging
from typing import Any

from mspa_tasks.config import Settings
from mspa_tasks.run import DayRun
from mspa_tasks.vector_store import (
    SERVABLE,
    STATUS,
    MilvusTarget,
    PublishRefused,
    Version,
    ensure_loaded,
    milvus_client,
    now_ms,
    properties,
    require_collection,
    serving_collection,
    set_properties,
)
from mspa_tasks.vector_store import versions as collection_versions

log = logging.getLogger(__name__)

def list_versions(target: MilvusTarget, settings: Settings) -> list[dict[str, Any]]:
    """Every collection of the alias's family, newest published first."""
    with milvus_client(target) as client:
        return [v.as_dict() for v in collection_versions(client, settings.vectors.alias)]


IN_FLIGHT = ("building", "built", "validated")


def retention_plan(versions: list[Version], keep: int, now_ms: int = 0, grace_ms: int = 0,
                   published_ds: str | None = None, published_at: int = 0,
                   ) -> tuple[list[str], list[str]]:
    """``(kept, dropped)`` collection names. Kept: the serving one, plus the newest published
    versions of other days until ``keep`` versions are kept (one per day), plus every build
    still in flight (``building``/``built``/``validated``) that another run may need: one
    of another day created less than ``grace_ms`` before ``now_ms`` (an interleaved backfill
    is building or validating it, or its replay still reads it). Dropped: the rest — failed,
    rolled-back and superseded versions, older duplicates of a day, versions beyond ``keep``,
    builds of ``published_ds`` older than the one just published (an interrupted attempt of
    the same run), and in-flight builds older than the grace period (abandoned).

    >>> V = lambda c, ds, st, t, s=False, made=0: Version(c, ds, st, t, s,
    ...                                                   {"mspa.created_at": str(made)})
    >>> retention_plan([V("c3", "d3", "published", 3, True), V("c2", "d2", "published", 2),
    ...                 V("c2b", "d2", "published", 1), V("c1", "d1", "published", 0),
    ...                 V("x", "d4", "failed", 0)], keep=2)
    (['c3', 'c2'], ['c2b', 'c1', 'x'])
    >>> other = [V("c3", "d3", "published", 3, True, made=90), V("b", "d1", "built", 0, made=95),
    ...          V("old", "d0", "built", 0, made=1), V("mine", "d3", "built", 0, made=80)]
    >>> retention_plan(other, keep=2, now_ms=100, grace_ms=50, published_ds="d3",
    ...                published_at=90)
    (['c3', 'b'], ['old', 'mine'])
    """
    kept: list[str] = [v.collection for v in versions if v.serving]
    days = {v.ds for v in versions if v.serving}
    for v in versions:  # newest published first
        if len(kept) >= keep:
            break
        if v.status in SERVABLE and not v.serving and v.ds not in days:
            kept.append(v.collection)
            days.add(v.ds)
    for v in versions:
        if v.status not in IN_FLIGHT or v.collection in kept:
            continue
        made = int(v.properties.get("mspa.created_at", 0) or 0)
        superseded = v.ds == published_ds and made < published_at
        if not superseded and now_ms - made < grace_ms:
            kept.append(v.collection)
    return kept, [v.collection for v in versions if v.collection not in kept]


def publish_collection(run: DayRun, name: str) -> dict[str, Any]:
    """Point the alias at ``name`` (one ``alter_alias``) and apply the retention rule. The
    collection's own day decides whether the alias moves: a ``ds`` that is not that day is
    refused (a move back is only ever a recorded :func:`rollback`)."""
    ds, target, settings = run.ds, run.target, run.settings
    cfg = settings.vectors
    with milvus_client(target) as client:
        require_collection(client, name)
        status = properties(client, name).get(STATUS)
        if status not in ("validated", "published"):
            raise PublishRefused(f"{name} has status {status!r}: an alias only ever points to "
                                 "a validated collection (docs/decisions.md)")
        own_ds = properties(client, name).get("mspa.ds")
        if own_ds != ds:
            raise PublishRefused(
                f"{name} holds the vectors of ds={own_ds}, not ds={ds}: a collection is "
                f"published under its own day (--ds {own_ds}); to serve an older day, roll "
                f"back: mspa vectors rollback --to {name} --reason '...'")
        previous = serving_collection(client, cfg.alias)
        newer = properties(client, previous).get("mspa.ds", "") if previous else ""
        if previous and previous != name and newer > ds:
            # A backfill or a rerun of a past day: consumers keep the newer vectors. The
            # collection stays validated (the day's replay measures it); retention drops it.
            log.warning("alias %s stays on %s (ds=%s): %s is of the older ds=%s, and a past "
                        "day never moves consumers back (roll back explicitly for that)",
                        cfg.alias, previous, newer, name, ds)
            return {"alias": cfg.alias, "collection": previous, "previous": previous,
                    "kept": [], "dropped": [], "ds": ds, "moved": False, "built": name}
        ensure_loaded(client, name)  # consumers never find the new version unloaded
        if previous is None:
            client.create_alias(name, cfg.alias)
        elif previous != name:
            client.alter_alias(name, cfg.alias)
        set_properties(client, name, status="published", published_at=now_ms())
        log.info("alias %s -> %s (was %s)", cfg.alias, name, previous)
        made = int(properties(client, name).get("mspa.created_at", 0) or 0)
        kept, dropped = retention_plan(collection_versions(client, cfg.alias), cfg.keep_versions,
                                       now_ms=now_ms(),
                                       grace_ms=int(cfg.inflight_grace_hours * 3_600_000),
                                       published_ds=ds, published_at=made)
        for old in dropped:
            log.info("retention: dropping %s", old)
            client.drop_collection(old)
    return {"alias": cfg.alias, "collection": name, "previous": previous, "kept": kept,
            "dropped": dropped, "ds": ds, "moved": True, "built": name}


def rollback(target: MilvusTarget, settings: Settings, to: str | None = None,
             reason: str = "manual rollback") -> dict[str, Any]:
    """Point the alias back at ``to`` or at the newest other published version; the version
    rolled away from is marked ``rolled_back`` (retention drops it at the next publish)."""
    cfg = settings.vectors
    with milvus_client(target) as client:
        versions = collection_versions(client, cfg.alias)
        current = next((v for v in versions if v.serving), None)
        if current is None:
            raise PublishRefused(f"alias {cfg.alias!r} does not exist yet: nothing to roll back")
        candidates = [v for v in versions if not v.serving and v.status in SERVABLE]
        if to:
            candidates = [v for v in candidates if v.collection == to]
        if not candidates:
            known = ", ".join(f"{v.collection} ({v.status})" for v in versions)
            wanted = f"named {to}" if to else f"other than {current.collection}"
            raise PublishRefused(f"no published version {wanted} to roll back to; "
                                 f"versions: {known}")
        chosen = candidates[0]
        ensure_loaded(client, chosen.collection)
        client.alter_alias(chosen.collection, cfg.alias)
        set_properties(client, current.collection, status="rolled_back", reason=reason[:500])
        log.warning("alias %s rolled back: %s -> %s (%s)", cfg.alias, current.collection,
                    chosen.collection, reason)
    return {"alias": cfg.alias, "from": current.collection, "to": chosen.collection,
            "ds": chosen.ds, "reason": reason}
