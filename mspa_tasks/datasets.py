"""The dataset catalog: every partitioned dataset one stage publishes and another reads.

Each :class:`Dataset` declares its name, its tables with their Arrow schemas, its
partitioning (``ds``, one partition per day, published by a manifest written last; see
:mod:`mspa_tasks.publish`) and the task that produces it. Stages talk only through it:

* :meth:`Dataset.publish` / :meth:`Dataset.stage` check every table against the declared
  schema before a byte is written;
* :meth:`Dataset.read` checks that the partition is published (else :class:`InputsMissing`,
  naming the task to run) and that what it reads still has the declared schema (else
  :class:`SchemaMismatch`, naming dataset, table, column and expected type);
* the DAGs derive their Airflow Assets (``outlets`` and ``inlets``) from :data:`CATALOG`.

Schemas are built on first use, so that importing the catalog (a DAG file does, at parse
time) costs no pyarrow import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mspa_tasks import vocab as V
from mspa_tasks.artifacts import ArtifactNotFound, ArtifactStore

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from mspa_tasks.publish import Published  # a type only (see _publish: pyarrow)


def _publish() -> ModuleType:
    """:mod:`mspa_tasks.publish`, imported when first used: every DAG file imports this
    catalog at parse time (its Assets), and publishing pulls pyarrow, which the scheduler's
    parse loop must not pay for."""
    from mspa_tasks import publish

    return publish


class InputsMissing(RuntimeError):
    """A partition a stage reads is not published; the message names the task to run."""


class SchemaMismatch(TypeError):
    """A table does not have its dataset's declared schema; the message names dataset,
    table, column, the type found and the type expected."""


ANY_DIM = -1  # a vector column's length is the encoder's, checked as "a fixed-size list"


def vector_type(dim: int = ANY_DIM) -> pa.DataType:
    """``float32`` vectors of ``dim`` (``ANY_DIM`` in declarations: any fixed length)."""
    import pyarrow as pa

    return pa.list_(pa.float32()) if dim == ANY_DIM else pa.list_(pa.float32(), dim)


def type_matches(expected: pa.DataType, actual: pa.DataType) -> bool:
    """``actual`` is ``expected``, where a declared variable-length list also accepts a
    fixed-size list of the same values (a vector of any dimension).

    >>> import pyarrow as pa
    >>> type_matches(vector_type(), pa.list_(pa.float32(), 384))
    True
    >>> type_matches(vector_type(), pa.list_(pa.float64(), 384)), type_matches(pa.int64(), pa.int32())
    (False, False)
    """
    import pyarrow as pa

    if expected.equals(actual):
        return True
    if pa.types.is_list(expected) and (pa.types.is_fixed_size_list(actual)
                                       or pa.types.is_list(actual)):
        return type_matches(expected.value_type, actual.value_type)
    return False


def check_schema(where: str, expected: pa.Schema, actual: pa.Schema) -> None:
    """Raise :class:`SchemaMismatch` unless ``actual`` has exactly ``expected``'s columns,
    in order, each of its type."""
    problems = []
    names = [f.name for f in actual]
    for field in expected:
        if field.name not in names:
            problems.append(f"column {field.name!r} is missing (expected {field.type})")
        elif not type_matches(field.type, actual.field(field.name).type):
            problems.append(f"column {field.name!r} is {actual.field(field.name).type}, "
                            f"expected {field.type}")
    extra = [n for n in names if n not in expected.names]
    if extra:
        problems.append(f"unexpected column(s) {extra}")
    if not problems and names != expected.names:
        problems.append(f"columns are in the order {names}, expected {expected.names}")
    if problems:
        raise SchemaMismatch(f"{where}: " + "; ".join(problems) + " (the catalog, "
                             "mspa_tasks/datasets.py, declares the contract between stages)")


@dataclass(frozen=True)
class Producer:
    """Who publishes a dataset: the DAG, the task, and how the runbook names that step."""

    dag: str
    task: str
    step: str

    def __str__(self) -> str:
        return f"{self.dag}: {self.task}"


@dataclass(frozen=True)
class Dataset:
    """One partitioned dataset (see module doc)."""

    name: str
    producer: Producer
    description: str
    schemas: Callable[[], Mapping[str, pa.Schema]]
    readers: tuple[str, ...] = ()       # "<dag>: <task id>" of the tasks that read it
    optional: bool = False              # readers cope with its absence
    asset: str = ""                     # the Airflow Asset's name, when not mspa_<name>

    @cached_property
    def tables(self) -> Mapping[str, pa.Schema]:
        return dict(self.schemas())

    @property
    def asset_name(self) -> str:
        return self.asset or f"mspa_{self.name}"

    @property
    def asset_uri(self) -> str:
        return f"mspa://{self.name}"

    # -- reading ------------------------------------------------------------------------

    def days(self, store: ArtifactStore) -> list[str]:
        """Published partitions, oldest first."""
        return _publish().published_days(store, self.name)

    def is_published(self, store: ArtifactStore, ds: str) -> bool:
        publish = _publish()
        return store.exists(f"{publish.partition_prefix(self.name, ds)}/{publish.MANIFEST}")

    def latest(self, store: ArtifactStore, ds: str, include_ds: bool = True) -> str | None:
        """The newest published day at or before ``ds`` (strictly before without
        ``include_ds``), or None."""
        days = [d for d in self.days(store) if d < ds or (include_ds and d == ds)]
        return days[-1] if days else None

    def require(self, store: ArtifactStore, ds: str, reader: str = "") -> None:
        """Raise :class:`InputsMissing` unless the partition of ``ds`` is published."""
        if not self.is_published(store, ds):
            by = f"; {reader} reads it" if reader else ""
            p = self.producer
            raise InputsMissing(f"{self.name}/ds={ds} is not published; run {p.step} for {ds} "
                                f"first (run {p.dag} for {ds}, or clear {p.task}{by})")

    def manifest(self, store: ArtifactStore, ds: str, reader: str = "") -> dict[str, Any]:
        self.require(store, ds, reader)
        return _publish().read_manifest(store, self.name, ds)

    def read(self, store: ArtifactStore, ds: str, table: str, reader: str = "") -> pa.Table:
        """One published table, checksum- and schema-checked."""
        expected = self._schema(table)
        try:  # one read of the manifest; the existence check only when it is missing
            out = _publish().read_table(store, self.name, ds, table)
        except ArtifactNotFound:
            self.require(store, ds, reader)
            raise
        check_schema(f"{self.name}/ds={ds} table {table!r}", expected, out.schema)
        return out

    # -- writing ------------------------------------------------------------------------

    def _schema(self, table: str) -> pa.Schema:
        if table not in self.tables:
            raise KeyError(f"dataset {self.name} has no table {table!r}; it declares "
                           f"{sorted(self.tables)}")
        return self.tables[table]

    def build(self, table: str, columns: Mapping[str, Any]) -> pa.Table:
        """A table of the declared schema from ``columns`` (lists or arrays by name); a
        declared column not given is all nulls. Naming a column the schema lacks raises.

        >>> t = AUTHOR_TEXTS.build("texts", {"author_id": [1], "text": ["calm"]})
        >>> t.schema == AUTHOR_TEXTS.tables["texts"], t.column("status").to_pylist()
        (True, [None])
        """
        import pyarrow as pa

        schema = self._schema(table)
        unknown = set(columns) - set(schema.names)
        if unknown:
            raise SchemaMismatch(f"{self.name} table {table!r} has no column(s) "
                                 f"{sorted(unknown)}")
        n = len(next(iter(columns.values()))) if columns else 0
        arrays = [pa.array(columns[f.name], f.type) if f.name in columns
                  else pa.nulls(n, f.type) for f in schema]
        return pa.Table.from_arrays(arrays, schema=schema)

    def check(self, ds: str, tables: Mapping[str, pa.Table]) -> None:
        """Every declared table present, none other, each with its declared schema."""
        if set(tables) != set(self.tables):
            raise SchemaMismatch(f"{self.name}/ds={ds}: tables {sorted(tables)} given, the "
                                 f"catalog declares {sorted(self.tables)}")
        for name, table in tables.items():
            check_schema(f"{self.name}/ds={ds} table {name!r}", self.tables[name], table.schema)

    def stage(self, store: ArtifactStore, ds: str,
              tables: Mapping[str, pa.Table]) -> dict[str, dict[str, Any]]:
        """Check and stage ``tables`` (unpublished until a manifest names them)."""
        self.check(ds, tables)
        return _publish().stage_tables(store, self.name, ds, dict(tables))

    def commit(self, store: ArtifactStore, ds: str, manifest: dict[str, Any]) -> Published:
        return _publish().commit_manifest(store, self.name, ds, manifest)

    def publish(self, store: ArtifactStore, ds: str, tables: Mapping[str, pa.Table],
                manifest: dict[str, Any]) -> Published:
        """Check, stage and commit ``tables`` in one call."""
        files = self.stage(store, ds, tables)
        return self.commit(store, ds, {**manifest, "files": files})


# ---------------------------------------------------------------------------------------
# schemas


def _sessions() -> dict[str, pa.Schema]:
    import pyarrow as pa

    return {
        "sessions": pa.schema([
            ("user_id", pa.int64()), ("seq", pa.int32()), ("author_id", pa.int64()),
            ("live_id", pa.int64()), ("ts", pa.int64()), ("amount", pa.float64()),
            ("event_id", pa.int64()), ("is_ground_truth", pa.bool_())]),
        "authors": pa.schema([
            ("author_id", pa.int64()), ("nickname", pa.string()), ("location", pa.string()),
            ("category", pa.string())]),
        "user_split": pa.schema([("user_id", pa.int64()), ("split", pa.string())]),
        "dropped_users": pa.schema([
            ("user_id", pa.int64()), ("reason", pa.string()), ("n_authors", pa.int32()),
            ("n_tip_days", pa.int32()), ("n_tips", pa.int32())]),
    }


def text_schema(id_col: str) -> pa.Schema:
    """A composer output table (``preference_texts`` / ``author_texts``)."""
    import pyarrow as pa

    return pa.schema([
        (id_col, pa.int64()), ("text", pa.string()), ("status", pa.string()),
        ("reason", pa.string()), ("model_version", pa.string()),
        ("prompt_version", pa.string()), ("input_hash", pa.string()),
        ("tokens_in", pa.int32()), ("tokens_out", pa.int32()), ("attempts", pa.int32()),
        ("reused", pa.bool_()), ("authors_truncated", pa.int32()),
        ("authors_omitted", pa.int32()),
    ])


def vector_schema(id_col: str, dim: int, with_fields: bool) -> pa.Schema:
    """A vector table (``author_vectors`` with its Milvus filter fields, ``user_vectors``)."""
    import pyarrow as pa

    fields = [(id_col, pa.int64()), ("vector", vector_type(dim)),
              ("text_hash", pa.string()), ("text_source", pa.string()),
              ("composer_version", pa.string()), ("reused", pa.bool_())]
    if with_fields:
        fields += [("category", pa.string()), ("location", pa.string())]
    return pa.schema(fields)


def example_schema(dim: int) -> pa.Schema:
    """An alignment example: which tip of the user it asks about (``tip_seq``), prompt,
    candidates and their labels, ground truth, candidates' vectors, the supervised target
    (the three-line answer the SFT warm start learns), whether the ground truth is among the
    authors the prompt's history shows (memory, not preference) and whether the user tipped
    it before (shown or cut from the history)."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([("user_id", pa.int64()), ("split", pa.string()), ("m", pa.int32()),
                      ("tip_seq", pa.int32()), ("prompt", pa.list_(message)), ("candidate_ids", pa.list_(pa.int64())),
                      ("candidate_labels", pa.list_(pa.string())),
                      ("ground_truth", pa.int64()),
                      ("candidate_vectors", pa.list_(vector_type(dim))),
                      ("target", pa.string()), ("gt_in_history", pa.bool_()),
                      ("gt_tipped_before", pa.bool_())])


SESSIONS = Dataset(
    "sessions", Producer("mspa_daily", "ingest.publish_sessions", "the ingest group"),
    "kept tips in session order (last = ground truth), kept authors, 7:2:1 user split, "
    "dropped users with reasons", _sessions,
    readers=("mspa_daily: compose.compose_shard", "mspa_daily: compose.publish_texts",
             "mspa_daily: vectors.encode", "mspa_daily: encoder.forward_day",
             "mspa_retrain: prepare"))
PREFERENCE_TEXTS = Dataset(
    "preference_texts", Producer("mspa_daily", "compose.publish_texts", "the compose group"),
    "one preference text per kept user, with the model and prompt that wrote it",
    lambda: {"texts": text_schema("user_id")},
    readers=("mspa_daily: compose.compose_shard (cache)", "mspa_daily: vectors.encode",
             "mspa_retrain: prepare (with [align.examples] user_side = preference_text)"))
AUTHOR_TEXTS = Dataset(
    "author_texts", Producer("mspa_daily", "compose.publish_texts", "the compose group"),
    "one feature text per kept author, with the model and prompt that wrote it",
    lambda: {"texts": text_schema("author_id")},
    readers=("mspa_daily: compose.compose_shard (cache)", "mspa_daily: vectors.encode",
             "mspa_retrain: prepare"))
AUTHOR_VECTORS = Dataset(
    "author_vectors", Producer("mspa_daily", "vectors.encode", "the vectors group"),
    "one unit vector per kept author (feature text, or profile when it failed)",
    lambda: {"vectors": vector_schema("author_id", ANY_DIM, with_fields=True)},
    readers=("mspa_daily: vectors.encode (cache)", "mspa_daily: vectors.build_collection",
             "mspa_daily: vectors.validate_collection", "mspa_daily: encoder.forward_day",
             "mspa_retrain: prepare"),
    asset="mspa_author_vector_data")  # mspa_author_vectors is the Milvus alias's Asset
USER_VECTORS = Dataset(
    "user_vectors", Producer("mspa_daily", "vectors.encode", "the vectors group"),
    "one unit vector per ok preference text", lambda: {"vectors": vector_schema(
        "user_id", ANY_DIM, with_fields=False)},
    readers=("mspa_daily: vectors.encode (cache)", "mspa_daily: vectors.validate_collection",
             "mspa_daily: encoder.forward_day"), asset="mspa_user_vector_data")
ALIGN_EXAMPLES = Dataset(
    "align_examples", Producer("mspa_retrain", "prepare", "the alignment examples (mspa_retrain)"),
    "recommendation prompts with m candidates each, the labelled tip held out; split "
    "rerank: MSPA's own shortlist of the model day for the two-stage replay",
    lambda: {"examples": example_schema(ANY_DIM)},
    readers=("mspa_retrain: train", "mspa_daily: replay.u2a (after replay.prepare_examples "
             "publishes it when missing)"))


def _encoder_alignment() -> dict[str, pa.Schema]:
    import pyarrow as pa

    return {"pairs": pa.schema([("user_id", pa.int64()), ("author_id", pa.int64()),
                                ("source", pa.string()), ("ts", pa.int64())]),
            "gate": pa.schema([("metric", pa.string()), ("model", pa.string()),
                               ("value", pa.float64()), ("low", pa.float64()),
                               ("high", pa.float64()), ("diff", pa.float64()),
                               ("diff_low", pa.float64()), ("diff_high", pa.float64()),
                               ("users", pa.int64()), ("n", pa.int64())])}


ENCODER_ALIGNMENT = Dataset(
    "encoder_alignment", Producer("mspa_daily", "encoder.align", "the encoder alignment"),
    "the pairs the aligned encoder of the day learnt from (train users' texts of the model "
    "day, authors they tipped or clicked on the day), the gate's figures on validation users "
    "with intervals; the manifest holds the decision and the fused score's weights",
    _encoder_alignment,
    readers=("mspa_daily: replay.offline (the fused score's weight, when present)",),
    asset="mspa_encoder_alignment")


def _world_truth() -> dict[str, pa.Schema]:
    import pyarrow as pa

    return {
        "authors": pa.schema([
            ("author_id", pa.int64()), ("category", pa.string()), ("region", pa.string()),
            ("style", pa.string()), ("atmosphere_before", pa.string()),
            ("atmosphere_after", pa.string()), ("drift_day", pa.int64()),
            ("popularity", pa.float64()), ("first_live_day", pa.int64()),
            ("live_days", pa.int64())]),
        # Who was live on which day (world day index from the first day; every author is
        # live every day in a closed world).
        "live": pa.schema([("author_id", pa.int64()), ("day", pa.int64())]),
        "users": pa.schema([
            ("user_id", pa.int64()), ("home_region", pa.string()),
            ("region_bias", pa.float64()), ("tips_per_day", pa.float64()),
            ("loyalty", pa.float64()),
            *[(f"pref_{c}", pa.float64()) for c in V.CATEGORIES],
            *[(f"atm_{m}", pa.float64()) for m in V.ATMOSPHERES]]),
    }


def _forward_day() -> dict[str, pa.Schema]:
    import pyarrow as pa

    vector = pa.list_(pa.float32())
    pair = pa.schema([("user", pa.int64()), ("author", pa.int64())])
    return {
        # index order is the replay's user / author index
        "users": pa.schema([("user_id", pa.int64()), ("split", pa.string()),
                            ("has_vector", pa.bool_()), ("vector", vector), ("als", vector)]),
        "authors": pa.schema([("author_id", pa.int64()), ("vector", vector), ("als", vector),
                              ("interactions", pa.int64()), ("first_ms", pa.int64()),
                              ("since_ms", pa.int64())]),
        "train": pair,   # the baselines' training rows (user index, author index)
        "seen": pair,    # pairs tipped or clicked in the model day's window
        "impressions": pa.schema([("request_id", pa.int64()), ("user_id", pa.int64()),
                                  ("author_id", pa.int64()), ("ts", pa.int64()),
                                  ("clicked", pa.int64()), ("gifted", pa.int64())]),
    }


FORWARD_DAY = Dataset(
    "forward_day", Producer("mspa_daily", "encoder.forward_day", "the forward day's inputs"),
    "what the forward replay of ds reads, loaded once per run: the model day's vectors and "
    "sessions by index, the day's impressions, the segments' interactions and the ALS factors "
    "trained on the model day's window; the manifest names the model day and its encoder",
    _forward_day,
    readers=("mspa_daily: encoder.align", "mspa_daily: replay.offline",
             "mspa_daily: replay.ann_parity",
             "mspa_daily: replay.u2a (the baselines of the two-stage rows)"))


CATALOG: dict[str, Dataset] = {d.name: d for d in (
    SESSIONS, PREFERENCE_TEXTS, AUTHOR_TEXTS, AUTHOR_VECTORS, USER_VECTORS, ALIGN_EXAMPLES,
    ENCODER_ALIGNMENT, FORWARD_DAY)}

# Inputs from outside the pipeline's DAGs, declared all the same (schema checked on both
# sides). Optional: a reader copes with their absence, and says so.
WORLD_TRUTH = Dataset(
    "world_truth", Producer("mspa seed-world", "the world generator", "`make seed`"),
    "the demo world's latent truth (author category, region, style, live schedule; user "
    "tastes), one "
    "partition at the world's first day; real data has none", _world_truth,
    readers=("mspa_daily: replay.offline (A2A triples, when present)",), optional=True)
EXTERNAL: dict[str, Dataset] = {WORLD_TRUTH.name: WORLD_TRUTH}


class UnknownDataset(KeyError):
    """A dataset name the catalog does not hold; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def dataset(name: str) -> Dataset:
    """The catalog entry ``name`` (:class:`UnknownDataset`, a KeyError, lists the known ones)."""
    known = {**CATALOG, **EXTERNAL}
    try:
        return known[name]
    except KeyError:
        raise UnknownDataset(f"no dataset {name!r} in the catalog; known: "
                             f"{', '.join(sorted(known))}") from None


def catalog_markdown() -> str:
    """The catalog as the table in ``docs/architecture.md`` (a test keeps them equal)."""
    lines = ["| dataset | tables (columns) | published by | read by | Asset |",
             "| --- | --- | --- | --- | --- |"]
    for d in (*CATALOG.values(), *EXTERNAL.values()):
        tables = "<br>".join(f"`{name}` ({', '.join(schema.names)})"
                             for name, schema in d.tables.items())
        asset = "(optional input, no Asset)" if d.optional else f"`{d.asset_name}`"
        lines.append(f"| `{d.name}` — {d.description} | {tables} | `{d.producer}` | "
                     f"{'<br>'.join(f'`{r}`' for r in d.readers)} | {asset} |")
    return "\n".join(lines)


def read_vectors(store: ArtifactStore, dataset: Dataset, ds: str) -> tuple[pa.Table, np.ndarray]:
    """A published vector partition of ``dataset`` (author or user vectors): its table and its
    vectors as an ``(n, dim)`` float32 array."""
    import numpy as np  # pyarrow and numpy stay out of the DAG files' parse-time imports

    table = dataset.read(store, ds, "vectors")
    dim = table.schema.field("vector").type.list_size
    flat = table.column("vector").combine_chunks().flatten()
    return table, np.asarray(flat, dtype=np.float32).reshape(table.num_rows, dim)
