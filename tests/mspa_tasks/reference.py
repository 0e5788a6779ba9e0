"""An independent pandas implementation of the ingest rules (sql/README.md), used to check
the SQL exactly: which tip rows are quarantined and why, and which clean rows are kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from mspa_tasks.config import IngestConfig
from mspa_tasks.days import window_for


def reference_ingest(url: str, ds: str, cfg: IngestConfig) -> dict:
    engine = sa.create_engine(url)
    tips = pd.read_sql("SELECT * FROM tip_events", engine)
    authors = pd.read_sql("SELECT * FROM authors", engine)
    media = pd.read_sql("SELECT author_id, frame_uri FROM author_media", engine)
    engine.dispose()
    w = window_for(ds, cfg.window_days)

    in_window = (tips.ts >= w.start_ms) & (tips.ts < w.end_ms)
    landed_late = ((tips.ingested_at >= w.start_ms) & (tips.ingested_at < w.end_ms)
                   & (tips.ts.isna() | (tips.ts >= w.end_ms)))
    cand = tips[in_window | landed_late].sort_values("load_seq").copy()
    known = set(authors.author_id.dropna().astype(np.int64))
    first_seen = ~cand.duplicated("event_id", keep="first")
    reason = pd.Series(None, index=cand.index, dtype=object)

    def mark(mask, name):
        reason[mask & reason.isna()] = name

    mark(cand.event_id.isna() | cand.user_id.isna() | cand.author_id.isna() | cand.ts.isna(),
         "null_key")
    mark(cand.amount.isna() | (cand.amount <= 0), "invalid_amount")
    mark(cand.ts > cand.ingested_at + cfg.future_tolerance_minutes * 60_000, "future_timestamp")
    mark(~cand.author_id.isin(known), "unknown_author")
    mark(~first_seen, "duplicate_event")
    cand["reason"] = reason

    with_frame = set(media[media.frame_uri.fillna("") != ""].author_id.dropna().astype(np.int64))
    a = authors.copy()
    a["dup"] = a.sort_values("updated_at", ascending=False).duplicated("author_id", keep="first")
    a["reason"] = None
    a.loc[a.author_id.isna(), "reason"] = "null_key"
    a.loc[a.reason.isna() & a.dup & a.author_id.notna(), "reason"] = "duplicate_author"
    a.loc[a.reason.isna() & (a.intro.fillna("").str.strip() == ""), "reason"] = "no_text"
    a.loc[a.reason.isna() & ~a.author_id.isin(with_frame), "reason"] = "no_image"
    kept_authors = set(a[a.reason.isna()].author_id.astype(np.int64))

    valid = cand[cand.reason.isna()].copy()
    valid["kept_author"] = valid.author_id.isin(kept_authors)
    to_kept = valid[valid.kept_author]
    per_user = to_kept.groupby("user_id").agg(
        n_authors=("author_id", "nunique"),
        n_days=("ts", lambda s: (s // 86_400_000).nunique()))
    per_user = per_user.reindex(valid.user_id.unique(), fill_value=0)
    keep_users = set(per_user[(per_user.n_authors >= cfg.min_authors)
                              & (per_user.n_days >= cfg.min_tip_days)].index.astype(np.int64))
    kept = to_kept[to_kept.user_id.isin(keep_users)]
    return {
        "quarantined_tips": cand.reason.value_counts().to_dict(),
        "quarantined_authors": a.reason.value_counts().to_dict(),
        "kept_event_ids": set(kept.event_id.astype(np.int64)),
        "kept_users": keep_users,
        "kept_authors": kept_authors,
        "candidates": len(cand),
    }
