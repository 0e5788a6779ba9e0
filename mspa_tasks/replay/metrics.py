"""Ranking metrics of the replay, vectorised: no Python loop per user or per request.

Definitions (the reference implementations in ``tests/mspa_tasks/replay`` say the same with
plain loops and scikit-learn):

* **AUC**: the Mann-Whitney statistic, ties counted one half (midranks), equal to
  ``sklearn.metrics.roc_auc_score``.
* **UAUC**: the AUC of each user's impressions, for users with at least one positive and one
  negative, averaged **uniformly over those users** (every user counts once, whatever their
  number of impressions: the question analysts ask is "for a typical user, does the model
  rank what they engage with above what they skip?"). The impression-weighted mean is
  returned beside it (``uauc_weighted``) because some papers report that one.
* **HR@K** (hit rate): the share of requests where at least one positive author's score is
  among the K best scores over all authors. Ties at the K-th score count as hits: a positive
  is in the top K when fewer than K authors score strictly higher.
* **Recall@K / NDCG@K**: per user, over all authors ranked by score, ties broken by the
  author's position in the catalogue (a stable sort); binary gains; averaged over users with
  at least one relevant author.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _midranks(groups: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, group index, midrank within group)`` of rows sorted by group then score."""
    order = np.lexsort((scores, groups))
    g, s = groups[order], scores[order]
    n = len(order)
    new_group = np.r_[True, g[1:] != g[:-1]]
    gid = np.cumsum(new_group) - 1
    first = np.flatnonzero(new_group)
    ordinal = np.arange(n) - first[gid] + 1.0
    new_tie = new_group | np.r_[True, s[1:] != s[:-1]]
    tid = np.cumsum(new_tie) - 1
    mid = (np.bincount(tid, weights=ordinal) / np.bincount(tid))[tid]
    return order, gid, mid


@dataclass(frozen=True)
class GroupedAuc:
    auc: np.ndarray        # per group; nan where a group lacks a class
    n: np.ndarray          # rows per group
    positives: np.ndarray  # positives per group

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.auc)

    def uniform_mean(self) -> float:
        return float(self.auc[self.valid].mean()) if self.valid.any() else float("nan")

    def weighted_mean(self) -> float:
        if not self.valid.any():
            return float("nan")
        w = self.n[self.valid].astype(float)
        return float((self.auc[self.valid] * w).sum() / w.sum())


def grouped_auc(groups: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> GroupedAuc:
    """The AUC of each group (e.g. user) at once, from midranks within groups."""
    groups = np.asarray(groups)
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels).astype(bool)
    if not (len(groups) == len(scores) == len(labels)):
        raise ValueError(f"lengths differ: groups {len(groups)}, scores {len(scores)}, "
                         f"labels {len(labels)}")
    if len(groups) == 0:
        empty = np.zeros(0)
        return GroupedAuc(empty, empty.astype(int), empty.astype(int))
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    order, gid, mid = _midranks(groups, scores)
    y = labels[order].astype(float)
    n_groups = int(gid[-1]) + 1
    n = np.bincount(gid, minlength=n_groups)
    pos = np.bincount(gid, weights=y, minlength=n_groups)
    neg = n - pos
    rank_sum = np.bincount(gid, weights=mid * y, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
    auc[(pos == 0) | (neg == 0)] = np.nan
    return GroupedAuc(auc, n, pos.astype(int))


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Global AUC (nan when only one class is present)."""
    scores = np.asarray(scores)
    return float(grouped_auc(np.zeros(len(scores), dtype=np.int64), scores, labels).auc[0]) \
        if len(scores) else float("nan")


def uauc(users: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``{"uauc", "uauc_weighted", "users"}`` (see module doc for the weighting)."""
    per = grouped_auc(users, scores, labels)
    return {"uauc": per.uniform_mean(), "uauc_weighted": per.weighted_mean(),
            "users": int(per.valid.sum())}


def _torch():
    import torch

    return torch


def _tensor(array: np.ndarray):
    """A float32 tensor sharing ``array``'s memory when it can (a copy when read-only)."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return _torch().from_numpy(array if array.flags.writeable else array.copy())


def _score_batches(queries: np.ndarray, items: np.ndarray, batch: int):
    """Yield ``(start, scores)`` with ``scores = queries[start:start+b] @ items.T`` (float32)."""
    items_t = _tensor(items)
    for start in range(0, len(queries), batch):
        yield start, _tensor(queries[start:start + batch]) @ items_t.T


def hit_rate_at_k(queries: np.ndarray, items: np.ndarray, positives: list[np.ndarray],
                  ks: tuple[int, ...], batch: int = 512) -> dict[int, float]:
    """HR@K for every K in ``ks`` (see module doc). ``queries[i]`` is request i's user vector,
    ``positives[i]`` the item rows it engaged with (non-empty). One matrix product and one
    ``topk`` per batch; K larger than the catalogue is clamped (every request hits)."""
    torch = _torch()
    if len(queries) != len(positives):
        raise ValueError(f"{len(queries)} queries but {len(positives)} positive lists")
    if any(len(p) == 0 for p in positives):
        raise ValueError("every request needs at least one positive item")
    if len(queries) == 0:
        return {k: float("nan") for k in ks}
    n_items = len(items)
    kmax = min(max(ks), n_items)
    width = max(len(p) for p in positives)
    pos = np.zeros((len(positives), width), dtype=np.int64)
    mask = np.zeros((len(positives), width), dtype=bool)
    for i, p in enumerate(positives):  # building the padded index (no scoring here)
        pos[i, :len(p)] = p
        mask[i, :len(p)] = True
    hits = {k: 0 for k in ks}
    for start, scores in _score_batches(queries, items, batch):
        stop = start + scores.shape[0]
        best = torch.topk(scores, kmax, dim=1, sorted=True).values
        p_scores = torch.gather(scores, 1, torch.from_numpy(pos[start:stop]))
        p_scores[~torch.from_numpy(mask[start:stop])] = -torch.inf
        top_pos = p_scores.max(dim=1).values
        for k in ks:
            threshold = best[:, min(k, n_items) - 1]
            hits[k] += int((top_pos >= threshold).sum())
    return {k: hits[k] / len(queries) for k in ks}


def recall_ndcg_at_k(queries: np.ndarray, items: np.ndarray, relevant: list[np.ndarray],
                     ks: tuple[int, ...], batch: int = 256) -> dict[str, float]:
    """Mean Recall@K and NDCG@K over queries (each with >= 1 relevant item row).

    The rank of a relevant item is the number of items scoring strictly higher plus the
    number scoring the same at an earlier catalogue position (a stable sort)."""
    torch = _torch()
    if len(queries) != len(relevant) or any(len(r) == 0 for r in relevant):
        raise ValueError("one non-empty relevant list per query is required")
    if len(queries) == 0:
        return {f"{m}@{k}": float("nan") for m in ("recall", "ndcg") for k in ks}
    width = max(len(r) for r in relevant)
    rel = np.zeros((len(relevant), width), dtype=np.int64)
    mask = np.zeros((len(relevant), width), dtype=bool)
    for i, r in enumerate(relevant):
        rel[i, :len(r)] = np.sort(r)
        mask[i, :len(r)] = True
    n_rel = mask.sum(axis=1)
    recall = {k: 0.0 for k in ks}
    ndcg = {k: 0.0 for k in ks}
    positions = torch.arange(items.shape[0])
    discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))
    # the comparison tensor is (batch, width, items) booleans: keep it near 20 M elements
    batch = max(1, min(batch, 20_000_000 // max(1, width * items.shape[0])))
    for start, scores in _score_batches(queries, items, batch):
        stop = start + scores.shape[0]
        idx = torch.from_numpy(rel[start:stop])
        s = torch.gather(scores, 1, idx)                                    # (b, w)
        higher = (scores[:, None, :] > s[:, :, None]).sum(-1)
        tied_before = ((scores[:, None, :] == s[:, :, None])
                       & (positions[None, None, :] < idx[:, :, None])).sum(-1)
        rank = (higher + tied_before).numpy()
        m = mask[start:stop]
        for k in ks:
            inside = (rank < k) & m
            recall[k] += float((inside.sum(1) / n_rel[start:stop]).sum())
            dcg = np.where(inside, discounts[np.minimum(rank, len(discounts) - 1)], 0.0).sum(1)
            ideal = np.cumsum(discounts[:k])[np.minimum(n_rel[start:stop], k) - 1]
            ndcg[k] += float((dcg / ideal).sum())
    n = len(queries)
    return {**{f"recall@{k}": recall[k] / n for k in ks}, **{f"ndcg@{k}": ndcg[k] / n for k in ks}}


def alignment_rate(vectors: np.ndarray, triples: np.ndarray) -> float:
    """A2A: share of ``(anchor, positive, negative)`` row triples where the anchor is more
    similar (dot product of the given, usually unit, vectors) to the positive; ties 1/2."""
    if len(triples) == 0:
        return float("nan")
    a, p, n = (vectors[triples[:, i]] for i in range(3))
    sp = np.einsum("ij,ij->i", a, p)
    sn = np.einsum("ij,ij->i", a, n)
    return float(((sp > sn) + 0.5 * (sp == sn)).mean())
