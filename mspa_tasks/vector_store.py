"""The Milvus client and what any stage reads through it: open a target (a milvus-lite file
or a server) and always close it, the properties that hold each collection's state, which
collection the alias serves and which one serves a day, exact-vs-ANN search helpers.

Below the stages: the vectors stage builds, gates and swaps collections with it
(:mod:`mspa_tasks.vectors.build`, :mod:`~mspa_tasks.vectors.gate`,
:mod:`~mspa_tasks.vectors.lifecycle`); the replay measures the served path through it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mspa_tasks.config import VectorsConfig

log = logging.getLogger(__name__)

STATUS = "mspa.status"          # building | built | validated | published | failed | rolled_back
PUBLISHED_AT = "mspa.published_at"
SERVABLE = ("published",)
class MilvusUnavailable(RuntimeError):
    """The Milvus target could not be opened (a milvus-lite file held by another process)."""


@dataclass(frozen=True)
class MilvusTarget:
    """Where Milvus is: a lite file path or a server URI, plus credentials from a connection."""

    uri: str
    token: str = field(default="", repr=False)
    db_name: str = ""

    @property
    def is_lite(self) -> bool:
        """A milvus-lite file (pymilvus's rule: a URI ending in ``.db``)."""
        return self.uri.endswith(".db")


class _LiteUnimplementedFilter(logging.Filter):
    """milvus-lite's in-process gRPC server answers RPCs it does not implement (asked for by
    pymilvus on connect) with an ERROR and a traceback; harmless, and alarming in task logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Method not implemented" not in record.getMessage() and not (
            record.exc_info and "Method not implemented" in str(record.exc_info[1]))


_LITE_FILTER = _LiteUnimplementedFilter()


@contextmanager
def milvus_client(target: MilvusTarget) -> Iterator[Any]:
    """An open ``MilvusClient``, always closed on exit (a lite file is one process's)."""
    from pymilvus import MilvusClient

    if target.is_lite and _LITE_FILTER not in logging.getLogger("grpc._server").filters:
        logging.getLogger("grpc._server").addFilter(_LITE_FILTER)

    kwargs: dict[str, Any] = {"uri": target.uri}
    if target.token:
        kwargs["token"] = target.token
    if target.db_name:
        kwargs["db_name"] = target.db_name
    try:
        client = MilvusClient(**kwargs)
    except Exception as exc:
        if target.is_lite and "Open local milvus failed" in str(exc):
            raise MilvusUnavailable(
                f"milvus-lite file {target.uri} could not be opened: another process most "
                "likely holds it (a lite file is one process's at a time; on Airflow the "
                "mspa_milvus pool has one slot). Wait for that task or stop the process "
                f"(`fuser {target.uri}` names it)") from exc
        from pymilvus.exceptions import MilvusException

        if isinstance(exc, MilvusException):
            raise MilvusUnavailable(
                f"Milvus at {target.uri} could not be opened: {exc.message}; check the server "
                "and the mspa_milvus connection (a local file must end in .db)") from exc
        raise
    try:
        yield client
    finally:
        client.close()
        if target.is_lite:
            # Closing the client leaves milvus-lite's in-process server (and its lock on the
            # file) alive until the process exits; release it so the next task can open it.
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(target.uri)


def set_properties(client: Any, name: str, **props: Any) -> None:
    client.alter_collection_properties(name, properties={f"mspa.{k}": str(v)
                                                         for k, v in props.items()})


def properties(client: Any, name: str) -> dict[str, str]:
    return dict(client.describe_collection(name).get("properties") or {})


def ensure_loaded(client: Any, name: str) -> None:
    """Load ``name`` into memory if it is not (a restarted milvus-lite releases everything;
    a server keeps collections loaded, so this is a no-op there)."""
    state = str(client.get_load_state(name).get("state", ""))
    if "Loaded" not in state:
        client.load_collection(name)


def serving_collection(client: Any, alias: str) -> str | None:
    """The collection the alias points to, or None before the first publish."""
    if alias not in (client.list_aliases().get("aliases") or []):
        return None
    return client.describe_alias(alias)["collection_name"]


def recall_at_k(exact_scores: np.ndarray, ann_positions: list[list[int]], k: int) -> float:
    """Mean recall@k of ANN results against exact search, tie-aware: an ANN hit counts when
    its exact score reaches the k-th best exact score (equal vectors tie; none is "wrong").
    Position -1 (an id outside the day's author set) is a miss.

    >>> scores = np.array([[0.9, 0.8, 0.8, 0.1]])
    >>> recall_at_k(scores, [[0, 2]], 2), recall_at_k(scores, [[0, 3]], 2)
    (1.0, 0.5)
    """
    kth = -np.sort(-exact_scores, axis=1)[:, k - 1]
    hits = [sum(p >= 0 and exact_scores[q, p] >= kth[q] - 1e-6 for p in positions[:k])
            for q, positions in enumerate(ann_positions)]
    return float(np.mean([min(h, k) / k for h in hits])) if hits else 1.0


def search_positions(client: Any, name: str, queries: np.ndarray, limit: int,
                     cfg: VectorsConfig, index_of: dict[int, int]) -> list[list[int]]:
    """Top-``limit`` positions (in ``index_of``) of each query through ``name`` (a collection
    or the alias), in batches that keep results under gRPC's message cap."""
    out: list[list[int]] = []
    for start in range(0, len(queries), cfg.search_batch):  # results stay under gRPC's cap
        hits = client.search(name, data=queries[start:start + cfg.search_batch].tolist(),
                             limit=limit, anns_field="vector", search_params=search_params(cfg))
        # An id the day does not keep maps to -1: never a hit, never "self".
        out += [[index_of.get(int(h["author_id"]), -1) for h in row] for row in hits]
    return out


def clamp_k(k: int, n: int) -> int:
    """``k``, at most a quarter of a catalogue of ``n`` (at least 1): a top-K that still
    measures ranking, for the vector gate and the replay's ANN parity alike.

    >>> clamp_k(1000, 100_000), clamp_k(1000, 400), clamp_k(5, 2)
    (1000, 100, 1)
    """
    return max(1, min(k, n // 4))


@dataclass(frozen=True)
class Version:
    collection: str
    ds: str
    status: str
    published_at: int
    serving: bool
    properties: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "ds": self.ds, "status": self.status,
                "published_at": self.published_at, "serving": self.serving,
                "recall": self.properties.get("mspa.recall"),
                "encoder_version": self.properties.get("mspa.encoder_version"),
                "reason": self.properties.get("mspa.reason")}


def versions(client: Any, alias: str) -> list[Version]:
    serving = serving_collection(client, alias)
    out = []
    for name in client.list_collections():
        if not name.startswith(f"{alias}__"):
            continue
        props = properties(client, name)
        out.append(Version(name, props.get("mspa.ds", ""), props.get(STATUS, "unknown"),
                           int(props.get(PUBLISHED_AT, 0) or 0), name == serving, props))
    return sorted(out, key=lambda v: (v.published_at, v.collection), reverse=True)


def collection_of_day(client: Any, alias: str, ds: str) -> str | None:
    """What serves ``ds``: the alias when it points at a collection of ``ds``, else the
    newest built validated or published collection of ``ds`` (a backfilled past day), else
    None."""
    serving = serving_collection(client, alias)
    if serving and properties(client, serving).get("mspa.ds") == ds:
        return serving
    days = [v for v in versions(client, alias)
            if v.ds == ds and v.status in ("validated", "published")]
    days.sort(key=lambda v: (int(v.properties.get("mspa.created_at", 0) or 0), v.collection),
              reverse=True)
    return days[0].collection if days else None


def search_params(cfg: VectorsConfig) -> dict[str, Any]:
    return {"metric_type": "IP", "params": dict(cfg.search_params)}


class PublishRefused(RuntimeError):
    """An alias swap or rollback that would serve an unvalidated or unknown collection."""


def now_ms() -> int:
    return int(time.time() * 1000)


def require_collection(client: Any, name: str) -> None:
    if not client.has_collection(name):
        raise PublishRefused(f"collection {name} does not exist (dropped by retention, or "
                             "never built): rerun build_collection for this ds")
