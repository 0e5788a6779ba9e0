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
(``file``, the file's own ``line`` where the record starts — blank lines and quoted newlines
counted —, ``reason``, the raw text) — a line that is not UTF-8 or holds a NUL byte, a quote
never closed, a wrong number of fields, a missing field, a value that is not an integer, an
id too large for a request id, a timestamp that is not in milliseconds, a non-positive gift,
a user, streamer or room the archive does not know, an interaction naming another streamer's
room, a repeated key or an exact repeat of a line. A whole-file defect fails the import
before anything is written: a missing required file or column, an empty file, a header that
names the streamer column twice. The import is one transaction that replaces the source
tables: rerun it and the warehouse holds the same rows; a failure midway leaves the previous
tables in place. It also fails, with the counts, rather than wipe good data: when more than
``max_reject_share`` of a file's lines are rejected, or a table that holds rows would be
replaced by none (``force=True``, ``--force``, accepts either).

KuaiLive has no frames: the paper's "no image" filter would drop every streamer, so the
source's settings (``conf/sources/kuailive.toml``, through ``MSPA_CONFIG``) turn
``ingest.require_author_image`` off.
"""

from __future__ import annotations

import csv
import itertools
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mspa_tasks.days import DAY_MS
from mspa_tasks.warehouse import bulk_insert, fetch_arrow, make_engine, run_sql

log = logging.getLogger(__name__)

SOURCE = "kuailive"
# Epoch milliseconds between 2001-09-09 and 2286-11-20: a value outside is in seconds (or
# microseconds) or corrupt.
MS_RANGE = (1_000_000_000_000, 9_999_999_999_999)
CHUNK_ROWS = 500_000
# A quoted field spanning more physical lines than this is a quote never closed: its first
# line is rejected and the lines after it are read again.
MAX_RECORD_LINES = 64
MAX_REJECT_SHARE = 0.1
# request_id = user_id * 100000 + day must fit a signed 64-bit integer
MAX_REQUEST_USER = (2**63 - 1) // 100_000 - 1
STREAMER = "streamer_id"
ALIASES = {"author_id": STREAMER}


class KuaiLiveFormatError(ValueError):
    """The folder is not a KuaiLive archive as published (a file or a column is missing)."""


class ImportRefused(KuaiLiveFormatError):
    """The import would replace good data with too little: nothing was written."""


@dataclass(frozen=True)
class CsvSpec:
    file: str
    ints: tuple[str, ...]               # required integer columns
    timestamps: tuple[str, ...] = ()    # of those, epoch milliseconds
    key: tuple[str, ...] = ()           # unique per row (a repeat is rejected)
    required: bool = True
    values: tuple[str, ...] = ()        # other required columns

    @property
    def columns(self) -> tuple[str, ...]:
        return self.ints + self.values


SPECS = {s.file: s for s in (
    CsvSpec("user.csv", ("user_id",), key=("user_id",)),
    CsvSpec("streamer.csv", (STREAMER,), key=(STREAMER,)),
    CsvSpec("room.csv", ("live_id", STREAMER, "start_timestamp"), ("start_timestamp",),
            key=("live_id",)),
    CsvSpec("gift.csv", ("user_id", "live_id", STREAMER, "timestamp"), ("timestamp",),
            values=("gift_price",)),
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


def import_kuailive(folder: str | Path, warehouse_url: str, *, force: bool = False,
                    max_reject_share: float = MAX_REJECT_SHARE) -> ImportSummary:
    """Load the archive in ``folder`` into ``warehouse_url``'s source tables (module doc)."""
    started = time.perf_counter()
    folder = Path(folder)
    headers = _check_archive(folder)
    engine = make_engine(warehouse_url)
    summary = ImportSummary(str(folder), engine.url.render_as_string(hide_password=True))
    imported_at = int(time.time() * 1000)
    try:
        with engine.begin() as conn:
            run_sql(conn, "ddl/warehouse.sql")
            run_sql(conn, "ddl/imports.sql")
            before = dict(run_sql(conn, "imports/source_counts.sql")[-1].all())
            run_sql(conn, "imports/replace_sources.sql", {"source": SOURCE})
            _Importer(folder, conn, summary, imported_at, headers,
                      None if force else max_reject_share).run()
            emptied = [f"{t} ({before[t]:,} rows -> 0)" for t in LOADED_TABLES
                       if before[t] and not summary.loaded.get(t)]
            if emptied and not force:
                raise ImportRefused(
                    f"{folder}: the import would empty {', '.join(emptied)}; nothing was "
                    f"written (read {summary.read}, rejected {_totals(summary.rejected)}); "
                    "fix the files, or pass --force to replace them anyway")
    finally:
        engine.dispose()
    summary.seconds = round(time.perf_counter() - started, 2)
    log.info("KuaiLive imported in %.1fs: loaded %s; rejected %s", summary.seconds,
             summary.loaded, _totals(summary.rejected))
    return summary


LOADED_TABLES = ("authors", "author_media", "tip_events", "impressions")


def _totals(rejected: dict[str, dict[str, int]]) -> dict[str, int]:
    return {f: sum(r.values()) for f, r in rejected.items()}


def _check_archive(folder: Path) -> dict[str, list[str]]:
    """Every file's header (the streamer column under one name), or the one whole-file
    defect that stops the import before anything is written."""
    if not folder.is_dir():
        raise KuaiLiveFormatError(f"{folder} is not a folder: unzip KuaiLive.zip and pass the "
                                  "folder holding user.csv, streamer.csv, room.csv, ...")
    missing = [s.file for s in SPECS.values() if s.required and not (folder / s.file).is_file()]
    if missing:
        raise KuaiLiveFormatError(f"{folder} is not a KuaiLive archive: {', '.join(missing)} "
                                  f"missing (expected {', '.join(SPECS)}); nothing was written")
    headers = {}
    for spec in SPECS.values():
        path = folder / spec.file
        if path.is_file():
            headers[spec.file] = _header(path, spec)
    return headers


def _header(path: Path, spec: CsvSpec) -> list[str]:
    with path.open("rb") as fh:
        records = _Records(fh)
        first = next(records, None)
    if first is None:
        raise KuaiLiveFormatError(f"{path} is empty: a KuaiLive file starts with its header "
                                  "line; nothing was written")
    if first.defect:
        raise KuaiLiveFormatError(f"{path}: its header line is unreadable ({first.defect}); "
                                  "nothing was written")
    names = [c.strip() for c in first.fields]
    if "author_id" in names and STREAMER in names:
        raise KuaiLiveFormatError(f"{path}: the header names the streamer column twice "
                                  f"(author_id and {STREAMER}); keep one; nothing was written")
    header = [ALIASES.get(c, c) for c in names]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise KuaiLiveFormatError(f"{path}: column(s) {', '.join(repeated)} appear twice in "
                                  "the header; nothing was written")
    absent = [c for c in spec.columns if c not in header]
    if absent:
        raise KuaiLiveFormatError(
            f"{path}: column(s) {', '.join(absent)} missing (header: {', '.join(header)}; "
            f"the streamer column may be named author_id or streamer_id); nothing was "
            "written")
    return header


@dataclass
class _Record:
    line: int                # the file's line where the record starts (the header is 1)
    fields: list[str]
    raw: str                 # the record's text as in the file, without its line ending
    defect: str | None       # a reason that rejects the record whatever its fields say


class _RunawayQuote(Exception):
    pass


class _Lines:
    """The physical lines of a file read as bytes, numbered, decoded as UTF-8 (a line that is
    not is decoded with replacement and flagged), with lines to read again in front."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.count = 0
        self.back: deque[tuple[int, str, bool]] = deque()
        self.taken: list[tuple[int, str, bool]] = []   # the lines of the record being read

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.back:
            item = self.back.popleft()
        else:
            raw = self.fh.readline()
            if not raw:
                raise StopIteration
            self.count += 1
            try:
                item = (self.count, raw.decode("utf-8"), False)
            except UnicodeDecodeError:
                item = (self.count, raw.decode("utf-8", "replace"), True)
        self.taken.append(item)
        if len(self.taken) > MAX_RECORD_LINES:
            raise _RunawayQuote
        return item[1]


class _Records:
    """The records of a CSV file, each with the file line it starts on. A line that is not
    UTF-8, a NUL byte or a quote never closed rejects that record only (its ``defect``);
    after a broken quote the reading goes on at the next line."""

    def __init__(self, fh: Any) -> None:
        self.lines = _Lines(fh)
        self.reader = csv.reader(self.lines, strict=True)

    def __iter__(self) -> _Records:
        return self

    def _broken_quote(self) -> _Record:
        first, *rest = self.lines.taken
        self.lines.back.extendleft(reversed(rest))
        self.lines.taken = []
        self.reader = csv.reader(self.lines, strict=True)  # a fresh parser state
        return _Record(first[0], [], first[1].rstrip("\r\n"), "unbalanced_quote")

    def __next__(self) -> _Record:
        while True:
            try:
                fields = next(self.reader)
            except StopIteration:
                if not self.lines.taken:
                    raise
                return self._broken_quote()
            except _RunawayQuote:
                return self._broken_quote()
            except csv.Error as exc:
                record = self._broken_quote()
                if "field larger" in str(exc):
                    record.defect = "field_too_large"
                return record
            taken, self.lines.taken = self.lines.taken, []
            if not fields:  # a blank line
                continue
            raw = "".join(text for _, text, _ in taken).rstrip("\r\n")
            defect = ("not_utf8" if any(bad for _, _, bad in taken)
                      else "nul_byte" if "\x00" in raw else None)
            return _Record(taken[0][0], fields, raw, defect)


class _Importer:
    def __init__(self, folder: Path, conn: Any, summary: ImportSummary, imported_at: int,
                 headers: dict[str, list[str]], max_reject_share: float | None):
        self.folder, self.conn, self.summary, self.imported_at = folder, conn, summary, imported_at
        self.headers, self.max_reject_share = headers, max_reject_share
        self.keys: dict[str, np.ndarray] = {}        # sorted known ids per key file
        self.rooms = (np.empty(0, np.int64), np.empty(0, np.int64))  # live_id, its streamer
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
        header = self.headers[name]
        seen = {"h": np.empty(0, np.uint64)}
        read = 0
        with (self.folder / name).open("rb") as fh:
            records = _Records(fh)
            next(records)  # the header, checked before the import began
            while batch := list(itertools.islice(records, CHUNK_ROWS)):
                read += len(batch)
                shaped = self.reject_misshapen(spec, header, batch)
                chunk = pd.DataFrame([r.fields for r in shaped], columns=header, dtype=str)
                lines = np.array([r.line for r in shaped], dtype=np.int64)
                raw = np.array([r.raw for r in shaped], dtype=object)
                good, ints = self.validate(spec, chunk, lines, raw, seen)
                self.write(name, chunk[good].reset_index(drop=True),
                           {c: v[good] for c, v in ints.items()})
                log.info("%s: %s lines read, %s loaded so far", name, f"{read:,}",
                         f"{sum(self.summary.loaded.values()):,}")
        self.summary.read[name] = read
        rejected = self.summary.rejected.get(name, {})
        share = sum(rejected.values()) / read if read else 0.0
        if self.max_reject_share is not None and share > self.max_reject_share:
            raise ImportRefused(
                f"{self.folder / name}: {sum(rejected.values()):,} of {read:,} lines rejected "
                f"({share:.0%}: {dict(sorted(rejected.items()))}), more than the "
                f"{self.max_reject_share:.0%} allowed; nothing was written; fix the file, or "
                "pass --force (or a larger --max-reject-share) to import the rest anyway")

    def reject_misshapen(self, spec: CsvSpec, header: list[str],
                         batch: list[_Record]) -> list[_Record]:
        """The records whose bytes and shape are sound; the others go to import_rejects."""
        bad = []
        for r in batch:
            if r.defect is None and len(r.fields) != len(header):
                r.defect = "wrong_field_count"
            if r.defect:
                bad.append(r)
        if bad:
            self.record_rejects(spec, [
                (r.line, r.defect, f"{len(r.fields)} fields, header has {len(header)}"
                 if r.defect == "wrong_field_count" else None, r.raw) for r in bad])
        return [r for r in batch if not r.defect]

    def record_rejects(self, spec: CsvSpec, rows: list[tuple[int, str, Any, str]]) -> None:
        """``(line, reason, detail, raw)`` rows into import_rejects, counted in the summary.
        NUL bytes are written as U+FFFD: PostgreSQL refuses them in text."""
        bulk_insert(self.conn, "import_rejects", ["source", "file", "line", "reason", "detail",
                                                  "raw", "imported_at"],
                    [(SOURCE, spec.file, int(line), why,
                      None if detail is None else str(detail).replace("\x00", "\ufffd"),
                      raw.replace("\x00", "\ufffd"), self.imported_at)
                     for line, why, detail, raw in rows])
        counts = self.summary.rejected.setdefault(spec.file, {})
        for why, k in Counter(why for _, why, _, _ in rows).items():
            counts[why] = counts.get(why, 0) + k

    def validate(self, spec: CsvSpec, chunk: pd.DataFrame, lines: np.ndarray, raw: np.ndarray,
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
            owner = self.room_owner(ints["live_id"])
            hosted_by = np.char.add(" is hosted by streamer_id=", owner.astype(str))
            reject(owner != ints[STREAMER], "room_of_another_streamer",
                   np.char.add(np.char.add("live_id=", ints["live_id"].astype(str)), hosted_by))
        if spec.file in ("click.csv", "negative.csv"):
            reject((ints["user_id"] < 0) | (ints["user_id"] > MAX_REQUEST_USER), "id_out_of_range",
                   np.char.add("user_id=", ints["user_id"].astype(str)))
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
            self.record_rejects(spec, [(lines[i], reason[i], detail[i], raw[i])
                                       for i in np.flatnonzero(bad)])
        return ~bad, ints

    # -- writing ------------------------------------------------------------------------

    def _loaded(self, table: str, n: int) -> None:
        self.summary.loaded[table] = self.summary.loaded.get(table, 0) + n

    def _span(self, ts: np.ndarray) -> None:
        if len(ts):
            lo, hi = int(ts.min()), int(ts.max())
            self.span = [lo if self.span[0] is None else min(lo, self.span[0]),
                         hi if self.span[1] is None else max(hi, self.span[1])]

    def room_owner(self, live_ids: np.ndarray) -> np.ndarray:
        """The streamer hosting each room (-1 where room.csv does not know it)."""
        ids, owners = self.rooms
        at = np.clip(np.searchsorted(ids, live_ids), 0, max(len(ids) - 1, 0))
        found = (at < len(ids)) & (ids[at] == live_ids) if len(ids) else np.zeros(
            len(live_ids), bool)
        return np.where(found, owners[at] if len(ids) else -1, -1)

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
            ids = np.concatenate([self.rooms[0], v["live_id"]])
            order = np.argsort(ids, kind="stable")
            self.rooms = (ids[order], np.concatenate([self.rooms[1], v[STREAMER]])[order])
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
