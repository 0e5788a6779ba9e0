"""bench/replay: the replay's exact HR@1000 and its UAUC against their plain references.

Vectors: ``--authors`` unit author vectors (default 100,000 × 384, the scale world's
catalogue and the encoder's width) in 64 clusters, ``--requests`` request vectors near them,
1-5 positive authors per request. Both sides score the same vectors on the same CPU threads.

* **HR@1000**: ``metrics.hit_rate_at_k`` (batched matmul + topk + the positives' check)
  against raw torch ``(q @ A.T).topk(1000)`` on the same batches, i.e. the physical floor
  that finds the top 1000 and checks nothing. Target: ours / raw users/s >= 0.8.
* **UAUC**: ``metrics.uauc`` (one lexsort, grouped midranks) against a per-user
  ``sklearn.metrics.roc_auc_score`` loop on ``--impressions`` rows over ``--users`` users;
  the two values are checked equal (1e-9) before the speedup is reported.

* **Bootstrap**: the 95% intervals over users (``uncertainty.user_bootstrap`` on the
  per-request HR@K of three models, ``uncertainty.auc_bootstrap`` on the impressions' AUC,
  ``--boot`` replicates) next to computing the same metrics once, on a default-world-sized
  day (``--boot-users`` users, ``--boot-authors`` authors, 3 requests and 30 impressions per
  user), same run, same vectors: the cost of the intervals as a multiple of the metrics'.

Median of ``--rounds``. Writes bench/out/replay.json and prints Markdown for BENCHMARKS.md.

    python bench/replay.py [--authors 100000] [--requests 2048] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "bench" / "out"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def vectors(n_authors: int, n_requests: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(64, dim))
    authors = unit(centers[rng.integers(0, 64, n_authors)] + 0.8 * rng.normal(size=(n_authors, dim)))
    queries = unit(centers[rng.integers(0, 64, n_requests)] + 0.8 * rng.normal(size=(n_requests, dim)))
    positives = [rng.choice(n_authors, rng.integers(1, 6), replace=False)
                 for _ in range(n_requests)]
    return authors, queries, positives


def raw_topk(queries: np.ndarray, authors: np.ndarray, k: int, batch: int) -> None:
    import torch

    a = torch.from_numpy(authors)
    for start in range(0, len(queries), batch):
        q = torch.from_numpy(queries[start:start + batch])
        torch.topk(q @ a.T, k, dim=1)


def bench_hr(args) -> dict:
    from mspa_tasks.scoring import metrics as M

    authors, queries, positives = vectors(args.authors, args.requests, args.dim)
    M.hit_rate_at_k(queries[:64], authors, positives[:64], (args.k,), args.batch)  # warm-up
    raw_topk(queries[:64], authors, args.k, args.batch)
    ours, raw, hr = [], [], None
    for _ in range(args.rounds):
        t = time.perf_counter()
        raw_topk(queries, authors, args.k, args.batch)
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        hr = M.hit_rate_at_k(queries, authors, positives, (args.k,), args.batch)[args.k]
        ours.append(time.perf_counter() - t)
    o, r = statistics.median(ours), statistics.median(raw)
    return {"authors": args.authors, "requests": args.requests, "dim": args.dim, "k": args.k,
            "batch": args.batch, "ours_s": ours, "raw_s": raw,
            "ours_users_per_s": args.requests / o, "raw_users_per_s": args.requests / r,
            "ratio": (args.requests / o) / (args.requests / r), "hr": hr}


def bench_uauc(args) -> dict:
    from sklearn.metrics import roc_auc_score

    from mspa_tasks.scoring import metrics as M

    rng = np.random.default_rng(1)
    users = rng.integers(0, args.users, args.impressions)
    scores = np.round(rng.normal(size=args.impressions), 3)  # rounded: ties happen
    labels = rng.random(args.impressions) < 1 / (1 + np.exp(-(scores - 1.0)))
    ours, loop = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        got = M.uauc(users, scores, labels)["uauc"]
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        order = np.argsort(users, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(users[order]) != 0, True])
        per_user = []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            y = labels[order[a:b]]
            if y.any() and not y.all():
                per_user.append(roc_auc_score(y, scores[order[a:b]]))
        ref = float(np.mean(per_user))
        loop.append(time.perf_counter() - t)
        assert abs(got - ref) < 1e-9, (got, ref)
    o, r = statistics.median(ours), statistics.median(loop)
    return {"impressions": args.impressions, "users": args.users, "ours_s": ours,
            "loop_s": loop, "speedup": r / o, "uauc": got}


def bench_bootstrap(args) -> dict:
    from mspa_tasks.scoring import metrics as M
    from mspa_tasks.scoring import uncertainty as U

    n_users, n_requests = args.boot_users, 3 * args.boot_users
    authors, queries, positives = vectors(args.boot_authors, n_requests, args.dim, seed=2)
    rng = np.random.default_rng(3)
    req_users = rng.integers(0, n_users, n_requests)
    models = {name: (unit(queries + s * rng.normal(size=queries.shape)), authors)
              for name, s in (("mspa", 0.0), ("popularity", 0.5), ("als", 0.2))}
    imp_users = rng.integers(0, n_users, 30 * n_users)
    imp_scores = {name: rng.normal(size=len(imp_users)) for name in models}
    labels = rng.random(len(imp_users)) < 0.1
    ks = (10, 50, 100, 500, 1000)
    metric_s, boot_s = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        hits = {n: M.hits_per_query(q, a, positives, ks, args.batch) for n, (q, a) in
                models.items()}
        aucs = {n: M.auc(s, labels) for n, s in imp_scores.items()}
        metric_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        for k in ks:
            U.user_bootstrap({n: h[k] for n, h in hits.items()}, req_users, args.boot, 0)
        U.auc_bootstrap(imp_scores, labels, imp_users, args.boot, 0)
        boot_s.append(time.perf_counter() - t)
    m, b = statistics.median(metric_s), statistics.median(boot_s)
    return {"users": n_users, "requests": n_requests, "authors": args.boot_authors,
            "impressions": len(imp_users), "replicates": args.boot, "metrics_s": metric_s,
            "bootstrap_s": boot_s, "bootstrap_over_metrics": b / m, "aucs": aucs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--impressions", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--boot-users", type=int, default=2000)
    parser.add_argument("--boot-authors", type=int, default=3000)
    args = parser.parse_args()
    import torch

    hr = bench_hr(args)
    ua = bench_uauc(args)
    bs = bench_bootstrap(args)
    out = {"hr": hr, "uauc": ua, "bootstrap": bs, "torch_threads": torch.get_num_threads(),
           "date": time.strftime("%Y-%m-%d")}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "replay.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"| HR@{hr['k']} over {hr['authors']:,} × {hr['dim']} authors, {hr['requests']:,} "
          f"requests | users/s | median s |\n| --- | ---: | ---: |\n"
          f"| `metrics.hit_rate_at_k` | {hr['ours_users_per_s']:.0f} | "
          f"{statistics.median(hr['ours_s']):.2f} |\n"
          f"| raw torch matmul + topk | {hr['raw_users_per_s']:.0f} | "
          f"{statistics.median(hr['raw_s']):.2f} |\n\n**Ratio {hr['ratio']:.2f}** "
          f"(target >= 0.8); per round ours {[round(x, 2) for x in hr['ours_s']]} s, raw "
          f"{[round(x, 2) for x in hr['raw_s']]} s; {out['torch_threads']} torch threads.\n")
    print(f"| UAUC, {ua['impressions']:,} impressions, {ua['users']:,} users | median s |\n"
          f"| --- | ---: |\n| `metrics.uauc` | {statistics.median(ua['ours_s']):.3f} |\n"
          f"| per-user `roc_auc_score` loop | {statistics.median(ua['loop_s']):.2f} |\n\n"
          f"**Speedup {ua['speedup']:.0f}x**, same value to 1e-9 (UAUC {ua['uauc']:.6f}).\n")
    print(f"| 95% intervals, {bs['users']:,} users, {bs['requests']:,} requests, "
          f"{bs['authors']:,} authors, {bs['impressions']:,} impressions, 3 models | median s |\n"
          f"| --- | ---: |\n| HR@K (5 K) and AUC, computed once | "
          f"{statistics.median(bs['metrics_s']):.2f} |\n"
          f"| their bootstrap over users, {bs['replicates']} replicates (paired) | "
          f"{statistics.median(bs['bootstrap_s']):.2f} |\n\n**Bootstrap / metrics "
          f"{bs['bootstrap_over_metrics']:.2f}x** in the same run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
