"""Warehouse access through SQLAlchemy: engines, SQL files from ``sql/``, bulk loads.

SQL lives in ``sql/`` as Jinja templates. A template may choose identifiers (tables,
partitions) and dialect-specific spellings; *values are always bound* (``:name``) and never
formatted into the text. A file may hold several statements; they run in order inside the
caller's transaction.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
import sqlparse

from mspa_tasks.config import REPO_ROOT

log = logging.getLogger(__name__)

SQL_DIR = REPO_ROOT / "sql"


INVALID_TEXT = {"values": 0}


class MissingSourceTable(RuntimeError):
    """A warehouse source table the pipeline reads does not exist. The pipeline never
    creates source tables: an empty stand-in would publish a day without that data."""


def require_tables(conn: sa.Connection, names: Sequence[str]) -> None:
    """Raise :class:`MissingSourceTable` naming every one of ``names`` that ``conn``'s
    database (default schema) lacks."""
    present = set(sa.inspect(conn).get_table_names())
    missing = [n for n in names if n not in present]
    if missing:
        where = conn.engine.url.render_as_string(hide_password=True)
        raise MissingSourceTable(
            f"warehouse {where} has no source table {', '.join(missing)}: the pipeline never "
            "creates source tables (an empty one would publish a day without its data); "
            "restore the table, or point the warehouse connection at the right database")


def _lenient_text(raw: bytes) -> str:
    r"""SQLite TEXT as str. SQLite stores whatever bytes a loader wrote; a value that is not
    valid UTF-8 is read with U+FFFD in place of the bad bytes (counted in ``INVALID_TEXT``
    and logged once per process) instead of failing the whole read. PostgreSQL refuses such
    bytes at load.

    >>> _lenient_text(b"caf\xc3\xa9"), _lenient_text(b"caf\xe9 live")
    ('café', 'caf\ufffd live')
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if not INVALID_TEXT["values"]:
            log.warning("warehouse text that is not valid UTF-8 (%r…) is read with U+FFFD in "
                        "place of the bad bytes", raw[:40])
        INVALID_TEXT["values"] += 1
        return raw.decode("utf-8", "replace")


class WarehouseURLError(ValueError):
    """A warehouse URL SQLAlchemy cannot use here: unparseable, an unknown dialect, a driver
    that is not installed."""


def make_engine(url: str | sa.URL) -> sa.Engine:
    """An engine for ``url``; SQLite files get WAL and foreign-key-free fast settings.
    A URL that cannot work here is one :class:`WarehouseURLError` line with the fix."""
    shown = url.render_as_string(hide_password=True) if isinstance(url, sa.URL) \
        else _redacted(str(url))
    try:
        engine = sa.create_engine(url, future=True)
    except sa.exc.NoSuchModuleError as exc:
        raise WarehouseURLError(
            f"warehouse URL {shown!r}: SQLAlchemy has no dialect for it ({exc}); use "
            "sqlite:///<path> or postgresql+psycopg2://<host>/<db> (or install the dialect's "
            "package)") from None
    except ImportError as exc:
        raise WarehouseURLError(
            f"warehouse URL {shown!r} needs the driver module {exc.name!r}, which is not "
            f"installed: pip install it, or name an installed driver (postgresql+psycopg2)"
        ) from None
    except sa.exc.ArgumentError as exc:
        raise WarehouseURLError(f"warehouse URL {shown!r} is not a SQLAlchemy URL ({exc}); "
                                "e.g. sqlite:///<absolute path>") from None
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()
            dbapi_conn.text_factory = _lenient_text

    return engine


def _redacted(url: str) -> str:
    """``url`` with any password replaced (for messages).

    >>> _redacted("postgresql://me:secret@db/x")
    'postgresql://me:***@db/x'
    """
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


@cache
def _jinja() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(SQL_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_sql(name: str, dialect: str, **context: Any) -> list[str]:
    """Render ``sql/<name>`` for ``dialect`` and split it into statements."""
    text = _jinja().get_template(name).render(dialect=dialect, **context)
    # Comments are stripped so that a ``:name`` in prose is never taken for a bind parameter.
    statements = (sqlparse.format(s, strip_comments=True).strip() for s in sqlparse.split(text))
    return [s.rstrip(";").strip() for s in statements if s]


def _bind_names(statement: str) -> set[str]:
    return set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", statement))


def run_sql(
    conn: sa.Connection, name: str, params: Mapping[str, Any] | None = None, **context: Any
) -> list[sa.CursorResult]:
    """Run every statement of ``sql/<name>`` with bound ``params``; returns their results."""
    results = []
    for statement in render_sql(name, conn.dialect.name, **context):
        clause = sa.text(statement)
        names = _bind_names(statement)
        missing = names - set(params or {})
        if missing:
            raise KeyError(f"sql/{name} needs bound parameter(s) {sorted(missing)}")
        bound = {k: v for k, v in (params or {}).items() if k in names}
        results.append(conn.execute(clause, bound))
    return results


def execute_many(conn: sa.Connection, name: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run the single statement of ``sql/<name>`` once per row (values bound); returns the
    row count. For small batches (quarantine, drops, check results); see ``bulk_insert``."""
    if not rows:
        return 0
    (statement,) = render_sql(name, conn.dialect.name)
    conn.execute(sa.text(statement), list(rows))
    return len(rows)


def sql_fingerprint() -> str:
    """Hash of every SQL file: part of the code version recorded in manifests."""
    digest = hashlib.sha256()
    for path in sorted(SQL_DIR.rglob("*.sql")):
        digest.update(path.relative_to(SQL_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def bulk_insert(
    conn: sa.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Append ``rows`` to ``table`` as fast as the dialect allows; returns the row count.

    PostgreSQL gets ``COPY FROM STDIN`` (CSV); other dialects a DBAPI ``executemany``.
    ``table`` and ``columns`` are identifiers chosen by our code, never user input.
    """
    rows = list(rows)
    if not rows:
        return 0
    collist = ", ".join(columns)
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        # COPY's CSV format reads a bare empty field as NULL and a quoted one ("") as an
        # empty string, so strings are always quoted and None is written bare.
        buffer = io.StringIO()
        for row in rows:
            buffer.write(",".join(_csv_field(v) for v in row))
            buffer.write("\n")
        buffer.seek(0)
        with dbapi.cursor() as cur:
            cur.copy_expert(f"COPY {table} ({collist}) FROM STDIN WITH (FORMAT csv)", buffer)
    else:
        placeholders = ", ".join("?" if conn.dialect.paramstyle == "qmark" else "%s"
                                 for _ in columns)
        cur = dbapi.cursor()
        cur.executemany(f"INSERT INTO {table} ({collist}) VALUES ({placeholders})", rows)
        cur.close()
    return len(rows)


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return str(value)


def fetch_arrow(conn: sa.Connection, name: str, params: Mapping[str, Any] | None = None,
                schema: Any = None, **context: Any):
    """Rows of the last statement of ``sql/<name>`` as a ``pyarrow.Table``.

    Reads through the DBAPI cursor in large batches, column-wise, without a DataFrame.
    """
    import pyarrow as pa

    result = run_sql(conn, name, params, **context)[-1]
    names = list(result.keys())
    # Read the DBAPI cursor directly: SQLAlchemy's per-row processing would cost more than
    # the query itself at a million rows, and these columns need no type conversion.
    cursor = result.cursor
    chunks = []
    while batch := cursor.fetchmany(250_000):
        cols = list(zip(*batch, strict=True))
        chunks.append(pa.table(
            {n: pa.array(c, type=schema.field(n).type if schema is not None else None)
             for n, c in zip(names, cols, strict=True)}
        ))
    result.close()
    if not chunks:
        if schema is not None:
            return schema.empty_table()
        return pa.table({n: pa.array([]) for n in names})
    return pa.concat_tables(chunks)
