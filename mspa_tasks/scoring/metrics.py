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
* **Ties by expected rank.** Where scores tie, the ranking is taken as broken at random,
  uniformly, and every metric is its expectation over those tie-breaks (exact, not sampled).
  A model with coarse scores (popularity counts are integers) gets no credit for a tie it
  did not resolve, and loses none for one it could not: the catalogue order plays no part.
* **HR@K** (hit rate): per request, the probability that at least one positive author is
  among the first K authors; averaged over requests. With ``h`` authors scoring above the
  best positive score, ``t`` authors at that score of which ``p`` positive, and ``r = K - h``
  slots left: 0 if ``r <= 0``, 1 if ``r >= t``, else ``1 - C(t - p, r) / C(t, r)``.
* **Recall@K / NDCG@K**: per user, over all authors ranked by score; a relevant author with
  ``h`` authors above it and ``t`` others tied with it has a rank uniform in ``h..h+t``, so
  its chance to be in the top K is ``clip((K - h) / (t + 1), 0, 1)`` and its expected gain
  the mean of the discounts over those ranks below K; binary gains; averaged over users
  with at least one relevant author.
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


def _padded(lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(index, mask)``: the lists as rows of one padded array (building, no scoring)."""
    width = max(len(p) for p in lists)
    index = np.zeros((len(lists), width), dtype=np.int64)
    mask = np.zeros((len(lists), width), dtype=bool)
    for i, p in enumerate(lists):
        index[i, :len(p)] = np.sort(p)
        mask[i, :len(p)] = True
    return index, mask


def hits_per_query(queries: np.ndarray, items: np.ndarray, positives: list[np.ndarray],
                   ks: tuple[int, ...], batch: int = 512) -> dict[int, np.ndarray]:
    """Per request, the expected hit at every K of ``ks`` (module doc: ties at random).
    ``queries[i]`` is request i's user vector, ``positives[i]`` the item rows it engaged with
    (non-empty). One matrix product per batch; K beyond the catalogue means every request
    hits."""
    torch = _torch()
    if len(queries) != len(positives):
        raise ValueError(f"{len(queries)} queries but {len(positives)} positive lists")
    if any(len(p) == 0 for p in positives):
        raise ValueError("every request needs at least one positive item")
    if len(queries) == 0:
        return {k: np.zeros(0) for k in ks}
    pos, mask = _padded(positives)
    n_items = len(items)
    kmax = min(max(ks), n_items)
    out = {k: np.zeros(len(queries)) for k in ks}
    for start, scores in _score_batches(queries, items, batch):
        stop = start + scores.shape[0]
        m = torch.from_numpy(mask[start:stop])
        p_scores = torch.gather(scores, 1, torch.from_numpy(pos[start:stop]))
        best = p_scores.masked_fill(~m, -torch.inf).max(dim=1).values          # (b,)
        # Counts from the top kmax alone: every author above the best positive is in it when
        # that positive reaches the top kmax; only a tie block crossing the kmax-th score
        # needs the whole row (a few rows), and a positive below it misses every K <= kmax.
        top = torch.topk(scores, kmax, dim=1, sorted=True).values
        last = top[:, -1]
        higher = (top > best[:, None]).sum(1).double()
        tied = (top == best[:, None]).sum(1).double()
        crossing = torch.nonzero(best == last).flatten()
        if len(crossing):
            tied[crossing] = (scores[crossing] == best[crossing, None]).sum(1).double()
        higher = torch.where(best < last, float(n_items), higher)  # below the top: no hit
        tied_pos = ((p_scores == best[:, None]) & m).sum(1)
        for k in ks:
            if k >= n_items:  # the whole catalogue: every request hits
                out[k][start:stop] = 1.0
                continue
            room = k - higher                                                   # slots left
            miss = torch.ones_like(room)      # P(no tied positive in the first `room`)
            for i in range(int(tied_pos.max())):
                factor = ((tied - room - i) / (tied - i)).clamp(min=0)
                miss = torch.where(tied_pos > i, miss * factor, miss)
            hit = torch.where(room <= 0, 0.0, torch.where(room >= tied, 1.0, 1 - miss))
            out[k][start:stop] = hit.numpy()
    return out


def hit_rate_at_k(queries: np.ndarray, items: np.ndarray, positives: list[np.ndarray],
                  ks: tuple[int, ...], batch: int = 512) -> dict[int, float]:
    """HR@K for every K in ``ks``: the mean of :func:`hits_per_query`."""
    hits = hits_per_query(queries, items, positives, ks, batch)
    return {k: float(v.mean()) if len(v) else float("nan") for k, v in hits.items()}


def recall_ndcg_per_query(queries: np.ndarray, items: np.ndarray, relevant: list[np.ndarray],
                          ks: tuple[int, ...], batch: int = 256) -> dict[str, np.ndarray]:
    """Per query (each with >= 1 relevant item row), the expected Recall@K and NDCG@K
    (module doc: ties at random)."""
    torch = _torch()
    if len(queries) != len(relevant) or any(len(r) == 0 for r in relevant):
        raise ValueError("one non-empty relevant list per query is required")
    if len(queries) == 0:
        return {f"{m}@{k}": np.zeros(0) for m in ("recall", "ndcg") for k in ks}
    rel, mask = _padded(relevant)
    width = rel.shape[1]
    n_rel = mask.sum(axis=1)
    out = {f"{m}@{k}": np.zeros(len(queries)) for m in ("recall", "ndcg") for k in ks}
    discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))
    # the comparison tensor is (batch, width, items) booleans: keep it near 20 M elements
    batch = max(1, min(batch, 20_000_000 // max(1, width * items.shape[0])))
    for start, scores in _score_batches(queries, items, batch):
        stop = start + scores.shape[0]
        s = torch.gather(scores, 1, torch.from_numpy(rel[start:stop]))      # (b, w)
        higher = (scores[:, None, :] > s[:, :, None]).sum(-1).numpy()
        others = (scores[:, None, :] == s[:, :, None]).sum(-1).numpy() - 1  # tied, not itself
        m = mask[start:stop]
        for k in ks:
            cum = np.r_[0.0, np.cumsum(discounts[:k])]                       # cum[j]: ranks < j
            p_in = np.clip((k - higher) / (others + 1), 0, 1)
            gain = (cum[np.minimum(higher + others + 1, k)] - cum[np.minimum(higher, k)]) \
                / (others + 1)
            ideal = cum[np.minimum(n_rel[start:stop], k)]
            out[f"recall@{k}"][start:stop] = np.where(m, p_in, 0).sum(1) / n_rel[start:stop]
            out[f"ndcg@{k}"][start:stop] = np.where(m, gain, 0).sum(1) / ideal
    return out


def recall_ndcg_at_k(queries: np.ndarray, items: np.ndarray, relevant: list[np.ndarray],
                     ks: tuple[int, ...], batch: int = 256) -> dict[str, float]:
    """Mean Recall@K and NDCG@K over queries: the means of :func:`recall_ndcg_per_query`."""
    per = recall_ndcg_per_query(queries, items, relevant, ks, batch)
    return {name: float(v.mean()) if len(v) else float("nan") for name, v in per.items()}


def alignment_rate(vectors: np.ndarray, triples: np.ndarray) -> float:
    """A2A: share of ``(anchor, positive, negative)`` row triples where the anchor is more
    similar (dot product of the given, usually unit, vectors) to the positive; ties 1/2."""
    if len(triples) == 0:
        return float("nan")
    a, p, n = (vectors[triples[:, i]] for i in range(3))
    sp = np.einsum("ij,ij->i", a, p)
    sn = np.einsum("ij,ij->i", a, n)
    return float(((sp > sn) + 0.5 * (sp == sn)).mean())
