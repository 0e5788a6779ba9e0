"""Import the public KuaiLive dataset (Kuaishou; arXiv 2508.05633) into the warehouse's source
tables, so that the daily DAG runs on real live-streaming logs.

The archive (CC BY-NC-SA 4.0, never shipped with this project; README: how to download it)
holds ``user.csv``, ``streamer.csv``, ``room.csv``, ``click.csv``, ``gift.csv``,
``negative.csv``, ``comment.csv`` and ``like.csv``, timestamps in epoch milliseconds. The
official scripts call the streamer column ``author_id`` and the documentation
``streamer_id``: both are accepted, in any file.

What goes where:

* ``gift.csv`` → ``tip_events`` (``gift_price`` is the amount; the archive has no delivery
  time, so ``ingested_at`` is the event time);
* ``click.csv`` (``clicked = 1``) and ``negative.csv`` (``clicked = 0``) → ``impressions``
  of live rooms; a click is ``gifted`` when the user gifted in that room. KuaiLive has no
  request ids: one request is a user's exposures on one UTC day
  (``request_id = user_id * 100000 + day``);
* ``streamer.csv`` → ``authors``: KuaiLive has no free text, so the profile ``intro`` is
  written from the structured fields (operation tag, country, gender, age, followers, rooms
  hosted, first live); ``category`` is the operation tag; ``updated_at`` is the first live
  (else the registration) date, so a streamer who first went live inside the span is unknown
  before it;
* ``room.csv`` → ``author_media``, one row per live room at its start: no frame, the caption
  is the room's content category (what the composer reads of a room);
* ``user.csv`` keys the interactions; ``comment.csv`` and ``like.csv`` (no text, no table
  here) are validated and counted only.

A row that cannot be loaded is never dropped silently: it goes to ``import_rejects``
(``file``, ``line``, ``reason``, the raw line) — a missing field, a value that is not an
integer, a timestamp that is not in milliseconds, a non-positive gift, a user, streamer or
room the archive does not know, a repeated key or an exact repeat of a line. A file without
a required column, or a missing required file, fails the import before anything is written.
The import is one transaction that replaces the source tables: rerun it and the warehouse
holds the same rows; a failure midway leaves the previous tables in place.

KuaiLive has no frames: the paper's "no image" filter would drop every streamer, so the
source's settings (``conf/sources/kuailive.toml``, through ``MSPA_CONFIG``) turn
``ingest.require_author_image`` off.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mspa_tasks.warehouse import bulk_insert, make_engine, run_sql

log = logging.getLogger(__name__)

SOURCE = "kuailive"
DAY_MS = 86_400_000
# Epoch milliseconds between 2001-09-09 and 2286-11-20: a value outside is in seconds (or
# microseconds) or corrupt.
MS_RANGE = (1_000_000_000_000, 9_999_999_999_999)
CHUNK_ROWS = 500_000
STREAMER = "streamer_id"
ALIASES = {"author_id": STREAMER}


class KuaiLiveFormatError(ValueError):
    """The folder is not a KuaiLive archive as published (a file or a column is missing)."""


@dataclass(frozen=True)
class CsvSpec:
    file: str
    ints: tuple[str, ...]               # required integer columns
    timestamps: tuple[str, ...] = ()    # of those, epoch milliseconds
    key: tuple[str, ...] = ()           # unique per row (a repeat is rejected)
    required: bool = True


SPECS = {s.file: s for s in (
    CsvSpec("user.csv", ("user_id",), key=("user_id",)),
    CsvSpec("streamer.csv", (STREAMER,), key=(STREAMER,)),
    CsvSpec("room.csv", ("live_id", STREAMER, "start_timestamp"), ("start_timestamp",),
            key=("live_id",)),
    CsvSpec("gift.csv", ("user_id", "live_id", STREAMER, "timestamp"), ("timestamp",)),
    CsvSpec("click.csv", ("user_id", "live_id", STREAMER, "timestamp"), ("timestamp",)),
    CsvSpec("negative.csv", ("user_id", "live_id", STREAMER, "timestamp"), ("timestamp",)),
    CsvSpec("comment.csv", ("user_id", "live_id", STREAMER, "timestamp"), ("timestamp",),
            required=False),
    CsvSpec("like.csv", ("user_id", "live_id", STREAMER, "timestamp"), ("timestamp",),
            required=False),
)}
# Interactions: every key must be known to user.csv, streamer.csv and room.csv.
UNKNOWN = {"user_id": "unknown_user", STREAMER: "unknown_streamer", "live_id": "unknown_room"}
INTERACTIONS = ("gift.csv", "click.csv", "negative.csv", "comment.csv", "like.csv")


@dataclass
class ImportSummary:
    folder: str
    warehouse: str
    read: dict[str, int] = field(default_factory=dict)       # data lines per file
    loaded: dict[str, int] = field(default_factory=dict)     # rows per warehouse table
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)  # file -> reason -> n
    counted_only: dict[str, int] = field(default_factory=dict)  # valid rows, no table
    days: tuple[str, str] | None = None                       # first and last event day
    seconds: float = 0.0


def import_kuailive(folder: str | Path, warehouse_url: str) -> ImportSummary:
    """Load the archive in ``folder`` into ``warehouse_url``'s source tables (module doc)."""
    started = time.perf_counter()
    folder = Path(folder)
    _check_archive(folder)
    engine = make_engine(warehouse_url)
    summary = ImportSummary(str(folder), engine.url.render_as_string(hide_password=True))
    imported_at = int(time.time() * 1000)
    try:
        with engine.begin() as conn:
            run_sql(conn, "ddl/warehouse.sql")
            run_sql(conn, "ddl/imports.sql")
            run_sql(conn, "imports/replace_sources.sql", {"source": SOURCE})
            _Importer(folder, conn, summary, imported_at).run()
    finally:
        engine.dispose()
    summary.seconds = round(time.perf_counter() - started, 2)
    log.info("KuaiLive imported in %.1fs: loaded %s; rejected %s", summary.seconds,
             summary.loaded, {f: sum(r.values()) for f, r in summary.rejected.items()})
    return summary


def _check_archive(folder: Path) -> None:
    if not folder.is_dir():
        raise KuaiLiveFormatError(f"{folder} is not a folder: unzip KuaiLive.zip and pass the "
                                  "folder holding user.csv, streamer.csv, room.csv, ...")
    missing = [s.file for s in SPECS.values() if s.required and not (folder / s.file).is_file()]
    if missing:
        raise KuaiLiveFormatError(f"{folder} is not a KuaiLive archive: {', '.join(missing)} "
                                  f"missing (expected {', '.join(SPECS)}); nothing was written")
    for spec in SPECS.values():
        path = folder / spec.file
        if not path.is_file():
            continue
        header = [ALIASES.get(c.strip(), c.strip()) for c in
                  pd.read_csv(path, nrows=0, dtype=str).columns]
        absent = [c for c in spec.ints if c not in header]
        if absent:
            raise KuaiLiveFormatError(
                f"{path}: column(s) {', '.join(absent)} missing (header: {', '.join(header)}; "
                f"the streamer column may be named author_id or streamer_id); nothing was "
                "written")


class _Importer:
    def __init__(self, folder: Path, conn: Any, summary: ImportSummary, imported_at: int):
        self.folder, self.conn, self.summary, self.imported_at = folder, conn, summary, imported_at
        self.keys: dict[str, np.ndarray] = {}        # sorted known ids per key file
        self.gifted: set[tuple[int, int]] = set()    # (user_id, live_id) with a gift
        self.span = [None, None]
        self.seq = 0

    def run(self) -> None:
        for name in ("user.csv", "streamer.csv", "room.csv", "gift.csv", "click.csv",
                     "negative.csv", "comment.csv", "like.csv"):
            if (self.folder / name).is_file():
                self.load(name)
            else:
                log.info("%s absent (optional): not counted", name)
        if self.span[0] is not None:
            self.summary.days = tuple(pd.to_datetime(v, unit="ms", utc=True).date().isoformat()
                                      for v in self.span)

    # -- reading and validating ------------------------------------------------------------

    def load(self, name: str) -> None:
        spec = SPECS[name]
        path = self.folder / name
        seen = {"h": np.empty(0, np.uint64)}
        line = 1
        read = 0
        for chunk in pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS):
            chunk.columns = [ALIASES.get(c.strip(), c.strip()) for c in chunk.columns]
            lines = np.arange(line + 1, line + 1 + len(chunk))
            line += len(chunk)
            read += len(chunk)
            good, ints = self.validate(spec, chunk, lines, seen)
            self.write(name, chunk[good].reset_index(drop=True),
                       {c: v[good] for c, v in ints.items()})
            log.info("%s: %s lines read, %s loaded so far", name, f"{read:,}",
                     f"{sum(self.summary.loaded.values()):,}")
        self.summary.read[name] = read

    def validate(self, spec: CsvSpec, chunk: pd.DataFrame, lines: np.ndarray,
                 seen: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = len(chunk)
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)

        def reject(mask: np.ndarray, why: str, what: Any = None) -> None:
            new = mask & (reason == None)  # noqa: E711 (element-wise)
            reason[new] = why
            if what is not None:
                detail[new] = what if np.isscalar(what) else np.asarray(what, dtype=object)[new]

        ints: dict[str, np.ndarray] = {}
        for col in spec.ints:
            text = chunk[col].str.strip()
            reject((text == "").to_numpy(), "missing_field", col)
            ok = text.str.fullmatch(r"-?\d{1,18}").to_numpy()
            reject(~ok, "not_an_integer", (col + "=" + text).to_numpy())
            ints[col] = np.where(ok, pd.to_numeric(text.where(ok, "0")).to_numpy(np.int64), 0)
        for col in spec.timestamps:
            v = ints[col]
            reject((v < MS_RANGE[0]) | (v > MS_RANGE[1]), "timestamp_not_ms",
                   np.char.add(f"{col}=", v.astype(str)))
        if spec.file == "gift.csv":
            text = chunk["gift_price"].str.strip() if "gift_price" in chunk else pd.Series([""] * n)
            price = pd.to_numeric(text, errors="coerce").to_numpy(float)
            reject((text == "").to_numpy(), "missing_field", "gift_price")
            reject(~np.isfinite(price) | (price <= 0), "invalid_amount",
                   ("gift_price=" + text).to_numpy())
            ints["gift_price"] = np.nan_to_num(price)
        if spec.file in INTERACTIONS:
            for col, keys in (("user_id", "user.csv"), (STREAMER, "streamer.csv"),
                              ("live_id", "room.csv")):
                known = np.isin(ints[col], self.keys[keys])
                reject(~known, UNKNOWN[col],
                       np.char.add(f"{col}=", ints[col].astype(str)))
        if spec.file == "room.csv":
            known = np.isin(ints[STREAMER], self.keys["streamer.csv"])
            reject(~known, "unknown_streamer",
                   np.char.add("streamer_id=", ints[STREAMER].astype(str)))
        # Repeats: of a key (keys files), or of a whole line (interaction logs), across the
        # whole file: a sorted array of the valid rows' keys (or line hashes) so far.
        if spec.key:
            (col,) = spec.key
            h = ints[col].astype(np.uint64)
        else:
            h = pd.util.hash_pandas_object(chunk, index=False).to_numpy(np.uint64)
        valid = reason == None  # noqa: E711
        repeat = np.zeros(n, bool)
        repeat[valid] = (pd.Series(h[valid]).duplicated().to_numpy()
                         | np.isin(h[valid], seen["h"]))
        reject(repeat, "duplicate_key" if spec.key else "duplicate_row")
        seen["h"] = np.union1d(seen["h"], h[reason == None])  # noqa: E711

        bad = reason != None  # noqa: E711
        if bad.any():
            raw = chunk[bad].astype(str).agg(",".join, axis=1).to_numpy()
            rows = [(SOURCE, spec.file, int(lines[i]), reason[i], detail[i], raw[j],
                     self.imported_at) for j, i in enumerate(np.flatnonzero(bad))]
            bulk_insert(self.conn, "import_rejects", ["source", "file", "line", "reason",
                                                      "detail", "raw", "imported_at"], rows)
            counts = self.summary.rejected.setdefault(spec.file, {})
            for why, k in Counter(reason[bad].tolist()).items():
                counts[why] = counts.get(why, 0) + k
        return ~bad, ints

    # -- writing ------------------------------------------------------------------------

    def _loaded(self, table: str, n: int) -> None:
        self.summary.loaded[table] = self.summary.loaded.get(table, 0) + n

    def _span(self, ts: np.ndarray) -> None:
        if len(ts):
            lo, hi = int(ts.min()), int(ts.max())
            self.span = [lo if self.span[0] is None else min(lo, self.span[0]),
                         hi if self.span[1] is None else max(hi, self.span[1])]

    def _add_keys(self, name: str, ids: np.ndarray) -> None:
        self.keys[name] = np.union1d(self.keys.get(name, np.empty(0, np.int64)), ids)

    def write(self, name: str, df: pd.DataFrame, v: dict[str, np.ndarray]) -> None:
        n = len(df)
        if name == "user.csv":
            self._add_keys(name, v["user_id"])
        elif name == "streamer.csv":
            self._add_keys(name, v[STREAMER])
            rows = [(int(a), f"streamer {int(a)}", _field(r, "country"), author_intro(r),
                     _field(r, "live_operation_tag"), _date_ms(r))
                    for a, r in zip(v[STREAMER], df.to_dict("records"), strict=True)]
            self._loaded("authors", bulk_insert(self.conn, "authors", [
                "author_id", "nickname", "location", "intro", "category", "updated_at"], rows))
        elif name == "room.csv":
            self._add_keys(name, v["live_id"])
            category = df.get("live_content_category", pd.Series([""] * n)).str.strip()
            rows = [(int(a), int(live), int(ts), None, room_caption(c), None) for a, live, ts, c
                    in zip(v[STREAMER], v["live_id"], v["start_timestamp"], category, strict=True)]
            self._loaded("author_media", bulk_insert(self.conn, "author_media", [
                "author_id", "live_id", "ts", "frame_uri", "frame_caption", "asr_text"], rows))
        elif name == "gift.csv":
            self._span(v["timestamp"])
            first = self.seq + 1
            self.seq += n
            rows = [(first + i, first + i, int(u), int(a), int(live), int(ts), float(p), int(ts))
                    for i, (u, a, live, ts, p) in enumerate(zip(
                        v["user_id"], v[STREAMER], v["live_id"], v["timestamp"], v["gift_price"],
                        strict=True))]
            self.gifted.update(zip(v["user_id"].tolist(), v["live_id"].tolist(), strict=True))
            self._loaded("tip_events", bulk_insert(self.conn, "tip_events", [
                "load_seq", "event_id", "user_id", "author_id", "live_id", "ts", "amount",
                "ingested_at"], rows))
        elif name in ("click.csv", "negative.csv"):
            self._span(v["timestamp"])
            clicked = int(name == "click.csv")
            rows = [(int(u) * 100_000 + int(ts) // DAY_MS, int(u), int(a), int(ts), clicked,
                     int(clicked and (int(u), int(live)) in self.gifted))
                    for u, a, live, ts in zip(v["user_id"], v[STREAMER], v["live_id"],
                                              v["timestamp"], strict=True)]
            self._loaded("impressions", bulk_insert(self.conn, "impressions", [
                "request_id", "user_id", "author_id", "ts", "clicked", "gifted"], rows))
        else:  # comment.csv, like.csv: no table here
            self.summary.counted_only[name] = self.summary.counted_only.get(name, 0) + n


def _field(row: dict[str, Any], name: str) -> str | None:
    value = str(row.get(name, "") or "").strip()
    return value if value and value.lower() not in ("nan", "null", "unknown") else None


def _date_ms(row: dict[str, Any]) -> int | None:
    """The first live (else the registration) date as epoch ms; None when neither parses."""
    for name in ("first_live_timestamp", "reg_timestamp"):
        value = _field(row, name)
        if value is None:
            continue
        if value.isdigit() and len(value) >= 12:
            return int(value)
        parsed = pd.to_datetime(value, errors="coerce", utc=True)
        if not pd.isna(parsed):
            return int(parsed.timestamp() * 1000)
    return None


GENDER = {"M": "male", "F": "female"}


def author_intro(row: dict[str, Any]) -> str | None:
    """The profile text of a streamer from its structured fields (KuaiLive has no free text);
    None when none of them is there (the author then fails the no-text filter).

    >>> author_intro({"live_operation_tag": "Relationship", "country": "China", "gender": "F",
    ...               "age": "24-30", "fans_user_num": "10000-100000", "accu_live_cnt": "100-500",
    ...               "first_live_timestamp": "2018-02-04"})
    'Relationship streamer in China, female, aged 24-30; 10000-100000 followers; 100-500 live rooms hosted since 2018-02-04.'
    """
    tag, country = _field(row, "live_operation_tag"), _field(row, "country")
    gender, age = GENDER.get(_field(row, "gender") or ""), _field(row, "age")
    fans, rooms, first = (_field(row, "fans_user_num"), _field(row, "accu_live_cnt"),
                          _field(row, "first_live_timestamp"))
    head = " ".join(x for x in (tag, "streamer") if x) + (f" in {country}" if country else "")
    who = ", ".join(x for x in (gender, f"aged {age}" if age else None) if x)
    parts = [", ".join(x for x in (head, who) if x)]
    if fans:
        parts.append(f"{fans} followers")
    if rooms:
        parts.append(f"{rooms} live rooms hosted" + (f" since {first}" if first else ""))
    if not any((tag, country, gender, age, fans, rooms)):
        return None
    return "; ".join(parts) + "."


def room_caption(category: str) -> str | None:
    category = (category or "").strip()
    return f"a {category} live room" if category else None


def reject_counts(warehouse_url: str) -> dict[str, dict[str, int]]:
    """``file -> reason -> rows`` in ``import_rejects`` for KuaiLive."""
    from mspa_tasks.warehouse import fetch_arrow

    engine = make_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            rows = fetch_arrow(conn, "imports/reject_counts.sql", {"source": SOURCE}).to_pylist()
    finally:
        engine.dispose()
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["file"], {})[r["reason"]] = int(r["n"])
    return out
