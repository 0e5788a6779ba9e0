"""The two-stage use of the recommender, as the paper deploys it: retrieval shortlists, the
aligned model ranks. For each test user whose held-out tip falls on the replayed day, align
published a ``rerank`` example (:func:`mspa_tasks.align.examples.first_stage_shortlists`):
MSPA's top ``m`` authors from the *model day*'s vectors (which never saw the day), in MSPA's
order. The champion reranks them by scoring (the probability of each candidate's label), and
the tipped author's place in each list gives:

* ``two_stage_hr@1``, ``two_stage_hr@5``, ``two_stage_ndcg@5`` for the reranked list (model
  ``mspa``) and, on the same tips, for the fused score, popularity and ALS each ranking the
  whole catalogue (the forward day's scorers, trained on the model day's window); their
  paired differences are against the reranked list;
* ``first_stage_*`` for MSPA's own order of the shortlist, and the paired difference
  "reranked − MSPA's order" said in a sentence (``two_stage`` in the ``u2a`` part).

A tip whose author is not in the shortlist is a miss at every K for the reranked list and
MSPA's order alike (the reranker cannot add an author), so the two differ only in order.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mspa_tasks.datasets import InputsMissing
from mspa_tasks.forward_day import StaleForwardDay, read_forward_day, scorers
from mspa_tasks.llm.ranking import choose
from mspa_tasks.replay.parts import FUSED, MSPA, row
from mspa_tasks.run import DayRun
from mspa_tasks.sampling import stable_sample
from mspa_tasks.scoring.uncertainty import user_bootstrap

log = logging.getLogger(__name__)

CUTOFF = 5
FIRST_STAGE = "first_stage"  # MSPA's own order, in the bootstrap beside the reranked list


def list_outcomes(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per tip, from the 0-based rank of the tipped author in a list (``-1``: not in it):
    ``hr@1``, ``hr@5`` and ``ndcg@5`` (one relevant author: ``1 / log2(rank + 2)`` within
    the first five).

    >>> {k: v.tolist() for k, v in list_outcomes(np.array([0, 3, -1, 7])).items()}
    {'hr@1': [1.0, 0.0, 0.0, 0.0], 'hr@5': [1.0, 1.0, 0.0, 0.0], 'ndcg@5': [1.0, 0.43067655807339306, 0.0, 0.0]}
    """
    ranks = np.asarray(ranks)
    found = ranks >= 0
    within = found & (ranks < CUTOFF)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(within, 1 / np.log2(np.where(within, ranks, 0) + 2), 0.0)
    return {"hr@1": (found & (ranks == 0)).astype(float), f"hr@{CUTOFF}": within.astype(float),
            f"ndcg@{CUTOFF}": gain}


def catalogue_rank(scores: np.ndarray, target: int) -> int:
    """The 0-based place of item ``target`` when the whole catalogue is ranked by ``scores``,
    best first, ties in catalogue order (as a stable top-k would list them).

    >>> catalogue_rank(np.array([0.5, 0.9, 0.5, 0.1]), 2), catalogue_rank(np.array([1., 1.]), 0)
    (2, 0)
    """
    s = scores[target]
    return int((scores > s).sum() + (scores[:target] == s).sum())


def rerank_part(run: DayRun, rows: list[dict[str, Any]], model_path: str,
                version: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(metric rows, the part's ``two_stage`` summary)`` for the published ``rerank``
    examples ``rows`` of ``run.ds`` (module doc)."""
    settings, cfg = run.settings, run.settings.replay
    if not rows:
        return [], {"note": "no test user's held-out tip is on this day with an earlier day's "
                            "vectors to shortlist from (the first day, or rerank_m = 0)"}
    chosen = set(stable_sample({r["user_id"] for r in rows}, cfg.acc_max_users,
                               f"{run.ds}:rerank"))
    rows = [r for r in rows if r["user_id"] in chosen]
    gate = settings.align.gate
    # always scored: the reranked list is the full order of the candidates' label scores
    choices = choose(model_path, rows, gate.batch_size, gate.max_new_tokens, "scored",
                     f"champion {version}: rerank")
    truth = [int(r["ground_truth"]) for r in rows]
    shortlists = [[int(a) for a in r["candidate_ids"]] for r in rows]
    reranked = [[s[i] for i in order] for s, order in zip(shortlists, choices.orders,
                                                          strict=True)]
    place = lambda lst, t: lst.index(t) if t in lst else -1  # noqa: E731
    ranks = {MSPA: np.array([place(lst, t) for lst, t in zip(reranked, truth, strict=True)]),
             FIRST_STAGE: np.array([place(lst, t) for lst, t in zip(shortlists, truth,
                                                                    strict=True)])}
    note = ""
    try:
        data, als_scorer = read_forward_day(run)
        models = scorers(data, settings, run.artifacts, als_scorer)
        u_index, a_index = data.user_index, data.author_index
        for name in (FUSED, "popularity", "als"):
            scorer = models[name]
            ranks[name] = np.array([
                catalogue_rank(scorer.users[u_index[int(r["user_id"])]] @ scorer.items.T,
                               a_index[t]) if t in a_index and int(r["user_id"]) in u_index
                else -1 for r, t in zip(rows, truth, strict=True)])
    except (InputsMissing, StaleForwardDay) as exc:
        note = f"the baselines' rankings are not shown: {exc}"
        log.warning("two-stage replay of %s: %s", run.ds, note)
    outcomes = {name: list_outcomes(r) for name, r in ranks.items()}
    users = np.array([int(r["user_id"]) for r in rows])
    metrics, sentences = [], []
    for metric in outcomes[MSPA]:
        est = user_bootstrap({name: o[metric] for name, o in outcomes.items()}, users,
                             n_boot=max(cfg.bootstrap, 1), seed=cfg.seed, reference=MSPA)
        for name, e in est.items():
            fields = e.as_dict()
            if name == FIRST_STAGE:
                metrics.append(row(f"first_stage_{metric}", MSPA, e.value, len(rows),
                                   low=fields["low"], high=fields["high"]))
                # reranked - MSPA's order (the bootstrap gives MSPA's order - reranked)
                d = tuple(0.0 - (x or 0.0) for x in (e.diff, e.diff_high, e.diff_low))
                verdict = ("beside (one user: no interval)" if len(chosen) < 2 else
                           "no different from" if not e.significant else
                           "above" if d[0] > 0 else "below")
                sentences.append(
                    f"{metric}: the champion's rerank {outcomes[MSPA][metric].mean():.3f} is "
                    f"{verdict} MSPA's own order {e.value:.3f} (reranked - MSPA's order "
                    f"{d[0]:+.3f}, 95% [{d[1]:+.3f}, {d[2]:+.3f}], {len(rows)} tips)")
                continue
            metrics.append(row(f"two_stage_{metric}", name, e.value, len(rows),
                               **{k: fields[k] for k in ("low", "high", "diff", "diff_low",
                                                         "diff_high", "significant")},
                               **({"model_version": version} if name == MSPA else {})))
    in_list = int((ranks[FIRST_STAGE] >= 0).sum())
    summary = {"m": len(shortlists[0]), "tips": len(rows), "users": len(chosen),
               "truth_in_shortlist": in_list, "verdicts": sentences,
               **({"note": note} if note else {})}
    log.info("two-stage replay of %s: %d tips, truth in MSPA's top %d for %d; %s", run.ds,
             len(rows), summary["m"], in_list, "; ".join(sentences))
    return metrics, summary
