"""bench/vectors: the nightly refresh end to end against encoding alone, and ANN recall per index.

Texts: every author of a generated world (preset ``default``: 3,000 authors), as category,
nickname, location and intro; 100 users' preference-like texts as queries. Model: the
packaged all-MiniLM-L6-v2 on CPU; Milvus: milvus-lite in a temp folder.

* **speed** (median of ``--rounds``, each round on a fresh store so nothing is reused):
  *end to end* = ``encode_day`` (encode + Parquet publish) + ``build_collection`` (insert,
  index, load) + ``validate_collection`` (the gate) with the default FLAT index;
  *encode alone* = ``Encoder.encode`` of the same author texts. Both with the model loaded.
* **recall**: the same vectors in one collection per index type (FLAT, IVF_FLAT, HNSW);
  recall@K of each against exact search (numpy) over the 100 query vectors.

    python bench/vectors.py [--preset default] [--rounds 3] [--k 1000]

Writes bench/out/vectors.json and prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from mspa_tasks.run import DayRun

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
OUT = REPO / "bench" / "out"

INDEXES = {
    "FLAT": ({}, {}),
    "IVF_FLAT": ({"nlist": 128}, {"nprobe": 16}),
    "HNSW": ({"M": 16, "efConstruction": 256}, {"ef": 1200}),
}


def world_texts(preset: str) -> tuple[pa.Table, list[str]]:
    import sqlalchemy as sa
    from ingest import ensure_world

    home = OUT / f"world-{preset}"
    ensure_world(preset, home)
    engine = sa.create_engine(f"sqlite:///{home}/warehouse.db")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT DISTINCT author_id, nickname, location, category, intro FROM authors "
            "WHERE author_id IS NOT NULL AND intro IS NOT NULL ORDER BY author_id")).all()
    engine.dispose()
    seen, kept = set(), []
    for r in rows:
        if r.author_id not in seen:
            seen.add(r.author_id)
            kept.append(r)
    authors = pa.table({"author_id": [r.author_id for r in kept],
                        "nickname": [r.nickname for r in kept],
                        "location": [r.location for r in kept],
                        "category": [r.category for r in kept]})
    texts = [f"Author type: {r.category}\nRegion: {r.location}\nIntro: {r.intro}" for r in kept]
    return authors, texts


def publish_inputs(store, ds: str, authors: pa.Table, texts: list[str]) -> None:
    from mspa_tasks.datasets import AUTHOR_TEXTS, PREFERENCE_TEXTS
    from mspa_tasks.publish import publish_partition

    n = authors.num_rows
    rng = np.random.default_rng(0)
    picks = rng.choice(n, size=100, replace=False)
    publish_partition(store, "sessions", ds, {"authors": authors}, {})
    publish_partition(store, "author_texts", ds, {"texts": AUTHOR_TEXTS.build("texts", {
        "author_id": authors.column("author_id").to_pylist(), "text": texts,
        "status": ["ok"] * n, "model_version": ["bench"] * n,
        "prompt_version": ["bench"] * n})}, {})
    publish_partition(store, "preference_texts", ds, {"texts": PREFERENCE_TEXTS.build("texts", {
        "user_id": list(range(100)),
        "text": [f"Favoured author types: {authors.column('category')[int(i)]}. "
                 f"Regional bias: {authors.column('location')[int(i)]}" for i in picks],
        "status": ["ok"] * 100, "model_version": ["bench"] * 100,
        "prompt_version": ["bench"] * 100})}, {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=1000)

    args = parser.parse_args()

    from mspa_tasks import vector_store
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.config import load_settings
    from mspa_tasks.datasets import AUTHOR_VECTORS, USER_VECTORS, read_vectors
    from mspa_tasks.vectors.build import build_collection
    from mspa_tasks.vectors.encode import Encoder, encode_day
    from mspa_tasks.vectors.gate import validate_collection

    ds = "2026-11-20"
    authors, texts = world_texts(args.preset)
    n = len(texts)
    base = load_settings("local", home=tempfile.mkdtemp(prefix="bench-vectors-"))
    encoder = Encoder(base.vectors)
    encoder.encode(texts[:64])  # warm-up
    e2e, alone = [], []
    for r in range(args.rounds):
        started = time.perf_counter()
        encoder.encode(texts, "bench")
        alone.append(time.perf_counter() - started)

        home = Path(tempfile.mkdtemp(prefix=f"bench-vectors-{r}-"))
        settings = load_settings("local", home=home)
        store = open_store(settings.artifacts_uri)
        publish_inputs(store, ds, authors, texts)
        target = vector_store.MilvusTarget(str(home / "milvus.db"))
        started = time.perf_counter()
        encode_day(DayRun(ds, settings, store), encoder=encoder)
        name = build_collection(DayRun(ds, settings, store, milvus=target)).collection
        validate_collection(DayRun(ds, settings, store, milvus=target), name)
        e2e.append(time.perf_counter() - started)
        print(f"round {r}: encode alone {alone[-1]:.1f}s, end to end {e2e[-1]:.1f}s", flush=True)

    _, vectors = read_vectors(store, AUTHOR_VECTORS, ds)
    _, queries = read_vectors(store, USER_VECTORS, ds)
    k = min(args.k, n)
    exact = queries @ vectors.T
    recalls = {}
    for index_type, (params, search) in INDEXES.items():
        s = settings.replaced(vectors={"index_type": index_type, "index_params": params,
                                       "search_params": search})
        name = build_collection(DayRun(ds, s, store, milvus=target),
                                build_id=f"r{index_type}").collection
        with vector_store.milvus_client(target) as client:
            vector_store.ensure_loaded(client, name)
            ids = read_vectors(store, AUTHOR_VECTORS, ds)[0].column("author_id").to_pylist()
            index_of = {int(a): i for i, a in enumerate(ids)}
            started = time.perf_counter()
            found = vector_store.search_positions(client, name, queries, k, s.vectors, index_of)
            seconds = time.perf_counter() - started
        recalls[index_type] = {"recall": vector_store.recall_at_k(exact, found, k),
                               "queries_per_s": len(queries) / seconds,
                               "index_params": params, "search_params": search}
        print(f"{index_type}: recall@{k} {recalls[index_type]['recall']:.4f}, "
              f"{recalls[index_type]['queries_per_s']:.1f} q/s", flush=True)

    result = {"authors": n, "rounds": args.rounds, "encode_alone_s": alone, "end_to_end_s": e2e,
              "encode_alone_authors_per_s": n / statistics.median(alone),
              "end_to_end_authors_per_s": n / statistics.median(e2e),
              "ratio_end_to_end_over_encode": statistics.median(e2e) / statistics.median(alone),
              "k": k, "recall": recalls}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vectors.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n| path | median s ({n} authors) | authors/s |\n| --- | ---: | ---: |")
    print(f"| end to end (encode + publish + insert + index + load + gate) | "
          f"{statistics.median(e2e):.1f} | {result['end_to_end_authors_per_s']:.0f} |")
    print(f"| encode alone | {statistics.median(alone):.1f} | "
          f"{result['encode_alone_authors_per_s']:.0f} |")
    print(f"\nratio end to end / encode alone: {result['ratio_end_to_end_over_encode']:.2f}")
    print(f"\n| index | params | recall@{k} | top-{k} queries/s |\n| --- | --- | ---: | ---: |")
    for index_type, r in recalls.items():
        print(f"| {index_type} | {r['index_params']} {r['search_params']} | {r['recall']:.4f} | "
              f"{r['queries_per_s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
