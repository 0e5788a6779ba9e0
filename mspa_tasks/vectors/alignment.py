"""Encoder alignment: teach the text encoder what users actually tip and click.

MSPA encodes preference texts and author feature texts with an off-the-shelf encoder;
nothing in that space knows which authors a viewer goes on to watch. This stage fine-tunes
the encoder contrastively (sentence-transformers' trainer, ``MultipleNegativesRankingLoss``:
every other author in the batch is a negative) on pairs from **train users only**:

* **anchor**: the user's preference text of the *model day* ``P`` (the newest day before
  ``ds`` with published texts and vectors: the text written from the window ending ``P``);
* **positive**: the feature text (of ``P``) of an author the user tipped or clicked **on
  day ds**, after that window; an author whose text failed is its profile, as in
  :mod:`.encode`. At most ``max_pairs_per_user`` authors per user (first interactions first).

Time and users: the encoder aligned on ``ds`` has seen interactions up to ``ds`` only, and
encodes the vectors of ``ds``, which serve (and are replayed on) ``ds + 1``: the replay of a
day never scores with an encoder that saw that day. Validation and test users never enter a
pair. The pairs are published (dataset ``encoder_alignment``, table ``pairs``), so what an
encoder learnt from is on record.

**Gate** (the forward replay of day ``ds`` on validation users): ``P``'s texts encoded by
the new encoder and by the champion, scored on ``ds``'s impressions of validation users
(UAUC on clicks) and their requests (HR@K, ``gate_hr_k``), with 95% paired bootstrap
intervals over users. Promoted only if neither figure trails the champion's by more than
``tolerance``. Promotion is the ``encoder_registry``'s (:mod:`mspa_tasks.registry`);
``encode`` then serves the champion (:func:`.encode.serving_encoder`): its version is the
``encoder_version`` of every vector and is in every Milvus collection's name.

**Fusion weight**: MSPA's weight in the fused score (:func:`mspa_tasks.scoring.baselines.fuse`)
is chosen here too, on the same validation users (the best UAUC over ``fusion_weights``), for
the champion and for the new encoder; the replay of ``ds + 1`` reads the weight of the
encoder that encoded ``ds``'s vectors.

Skipped, with the reason in the log and nothing published, when ``[vectors.align] enabled``
is false, when the encoder is pinned (``encoder_from_registry = false``), on the first day
(no earlier texts) and when fewer than ``min_pairs`` pairs exist. Production runs the same
entry point (``python -m mspa_tasks vectors align --ds``) on a GPU node.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mspa_tasks import registry as R
from mspa_tasks.artifacts import ArtifactStore
from mspa_tasks.config import EncoderAlignConfig
from mspa_tasks.datasets import ENCODER_ALIGNMENT, SESSIONS
from mspa_tasks.days import window_for
from mspa_tasks.encoder_lineage import EncoderLeak, check_encoder_before, fusion_weight
from mspa_tasks.forward_day import (
    NoEarlierDay,
    ReplayData,
    model_day,
    read_forward_day,
    requests_with_positives,
    scored_impressions,
)
from mspa_tasks.model_store import upload_folder
from mspa_tasks.run import DayRun
from mspa_tasks.scoring import metrics as M
from mspa_tasks.scoring import uncertainty as U
from mspa_tasks.scoring.baselines import Scorer, fuse, pair_scores, popularity
from mspa_tasks.vectors.encode import (
    Encoder,
    _weights_digest,
    author_texts,
    preference_texts,
    resolve_encoder,
    serving_encoder,
)
from mspa_tasks.warehouse import fetch_arrow, make_engine

log = logging.getLogger(__name__)

READER = "vectors.alignment"
__all__ = ["EncoderLeak", "check_encoder_before", "fusion_weight", "align_encoder",
           "training_pairs", "train_encoder", "evaluate_encoders"]
CANDIDATE = "new_encoder"
CHAMPION = "champion_encoder"


class NothingToAlign(RuntimeError):
    """The day cannot be aligned on (first day, too few pairs, disabled): not a failure."""


def encoder_prefix(version: str) -> str:
    return f"models/encoder/{version}"


def encoder_stem(version: str) -> str:
    """The base encoder's name in a version, for naming the next version.

    >>> encoder_stem("all-minilm-l6-v2-0123456789ab")
    'all-minilm-l6-v2'
    >>> encoder_stem("all-minilm-l6-v2-aligned-20261119-0123abcd")
    'all-minilm-l6-v2'
    >>> encoder_stem("sentence-transformers/all-MiniLM-L6-v2")
    'all-minilm-l6-v2'
    """
    stem = version.split("/")[-1].lower()
    stem = re.sub(r"-aligned-.*$", "", stem)
    return re.sub(r"-[0-9a-f]{12}$", "", stem)


# ---------------------------------------------------------------------------------------
# pairs


def day_interactions(ds: str, warehouse_url: str, store: ArtifactStore) -> pa.Table:
    """``user_id, author_id, ts, source`` of every tip (``sessions`` of ``ds``) and click
    (the warehouse's impressions) on day ``ds`` itself, in time order."""

    day = window_for(ds, 1)
    sessions = SESSIONS.read(store, ds, "sessions", READER)
    ts = sessions.column("ts").to_numpy()
    on_day = (ts >= day.start_ms) & (ts < day.end_ms)
    engine = make_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            impressions = fetch_arrow(conn, "replay/select_impressions.sql",
                                      {"start_ms": day.start_ms, "end_ms": day.end_ms})
    finally:
        engine.dispose()
    clicked = impressions.column("clicked").to_numpy().astype(bool)
    users = np.r_[sessions.column("user_id").to_numpy()[on_day],
                  impressions.column("user_id").to_numpy()[clicked]].astype(np.int64)
    authors = np.r_[sessions.column("author_id").to_numpy()[on_day],
                    impressions.column("author_id").to_numpy()[clicked]].astype(np.int64)
    times = np.r_[ts[on_day], impressions.column("ts").to_numpy()[clicked]].astype(np.int64)
    source = np.r_[np.full(int(on_day.sum()), "tip"), np.full(int(clicked.sum()), "click")]
    order = np.lexsort((authors, times, users))
    return pa.table({"user_id": users[order], "author_id": authors[order], "ts": times[order],
                     "source": source[order].astype(str)})


@dataclasses.dataclass
class Pairs:
    """Training pairs: ``table`` (user_id, author_id, source, ts) and their texts."""

    model_day: str
    table: pa.Table
    anchors: list[str]
    positives: list[str]

    def __len__(self) -> int:
        return self.table.num_rows


def training_pairs(ds: str, model_day: str, warehouse_url: str, store: ArtifactStore,
                   cfg: EncoderAlignConfig) -> Pairs:
    """The pairs of ``ds`` (module doc): train users' texts of ``model_day`` with the authors
    they tipped or clicked on ``ds``."""

    if model_day >= ds:
        raise ValueError(f"the texts must be older than the interactions: {model_day} >= {ds}")
    split = SESSIONS.read(store, model_day, "user_split", READER)
    train = {u for u, s in zip(split.column("user_id").to_pylist(),
                               split.column("split").to_pylist(), strict=True) if s == "train"}
    ok_users, _ = preference_texts(store, model_day, READER)
    anchor_of = {r["user_id"]: r["text"] for r in ok_users if r["user_id"] in train}
    authored = author_texts(store, model_day, READER)
    positive_of = dict(zip(authored.author_ids, authored.texts, strict=True))
    events = day_interactions(ds, warehouse_url, store).to_pylist()
    taken: dict[int, list[int]] = {}
    rows = []
    for e in events:  # time order per user: first interactions first
        user, author = e["user_id"], e["author_id"]
        if user not in anchor_of or author not in positive_of:
            continue
        seen = taken.setdefault(user, [])
        if author in seen or len(seen) >= cfg.max_pairs_per_user:
            continue
        seen.append(author)
        rows.append(e)
    table = pa.table({"user_id": pa.array([r["user_id"] for r in rows], pa.int64()),
                      "author_id": pa.array([r["author_id"] for r in rows], pa.int64()),
                      "source": pa.array([r["source"] for r in rows], pa.string()),
                      "ts": pa.array([r["ts"] for r in rows], pa.int64())})
    log.info("encoder alignment %s: %d pairs from %d train users (texts of %s, interactions of "
             "%s: %d tips, %d clicks)", ds, len(rows), len(taken), model_day, ds,
             sum(r["source"] == "tip" for r in rows), sum(r["source"] == "click" for r in rows))
    return Pairs(model_day, table, [anchor_of[r["user_id"]] for r in rows],
                 [positive_of[r["author_id"]] for r in rows])


# ---------------------------------------------------------------------------------------
# training


def train_encoder(pairs: Pairs, base_path: str, cfg: EncoderAlignConfig,
                  out_dir: Path) -> dict[str, Any]:
    """Fine-tune the encoder at ``base_path`` on ``pairs``; save it to ``out_dir``. Returns
    the loss per logged step and the time taken."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import TrainerCallback

    started = time.perf_counter()
    losses: list[dict[str, float]] = []

    class _Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append({"step": state.global_step, "loss": float(logs["loss"])})
                log.info("encoder alignment step %d/%d: loss %.4f", state.global_step,
                         state.max_steps, logs["loss"])

    model = SentenceTransformer(base_path)
    model.max_seq_length = cfg.max_seq_length
    data = Dataset.from_dict({"anchor": pairs.anchors, "positive": pairs.positives})
    with tempfile.TemporaryDirectory(prefix="mspa-encoder-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=cfg.epochs,
            per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
            warmup_ratio=cfg.warmup_ratio, seed=cfg.seed, data_seed=cfg.seed,
            # the same author (or user) twice in a batch would be its own negative
            batch_sampler=BatchSamplers.NO_DUPLICATES, logging_steps=1, save_strategy="no",
            report_to="none", disable_tqdm=True)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=MultipleNegativesRankingLoss(model),
                                             callbacks=[_Log()])
        trainer.train()
    model.save(str(out_dir))
    return {"steps": losses, "pairs": len(pairs), "epochs": cfg.epochs,
            "batch_size": cfg.batch_size, "seconds": round(time.perf_counter() - started, 1)}


# ---------------------------------------------------------------------------------------
# gate and fusion weight


def _mean_uauc(s, scores: np.ndarray) -> float:

    per = M.grouped_auc(s.user, scores, s.clicked)
    return float(np.mean(per.auc[per.valid])) if per.valid.any() else float("nan")


def choose_weight(mspa, ids, s, rows: np.ndarray, grid: tuple[float, ...]
                  ) -> tuple[float, dict[str, float]]:
    """MSPA's weight in the fused score with the best UAUC (clicks) on the impressions ``s``
    (ties: the larger MSPA weight), and the UAUC of every weight tried."""

    tried = {}
    for w in grid:
        fused = fuse(mspa, ids, w, rows)
        tried[f"{w:g}"] = _mean_uauc(s, pair_scores(fused, s.user, s.author))
    best = max(grid, key=lambda w: (np.nan_to_num(tried[f"{w:g}"], nan=-1.0), w))
    return float(best), tried


def evaluate_encoders(run: DayRun, encoders: dict[str, Any],
                      forward: tuple[ReplayData, Scorer] | None = None) -> dict[str, Any]:
    """The forward replay of ``ds`` on validation users with each encoder of ``encoders``
    (name -> :class:`.encode.Encoder`; :data:`CHAMPION` is the reference of the paired
    intervals), ALS and popularity trained on the window ending the model day, and the fused
    score of each encoder at its chosen weight. The forward day and its ALS are the run's
    published ones (:func:`~mspa_tasks.forward_day.read_forward_day`) unless ``forward``
    gives them."""
    store, settings = run.artifacts, run.settings
    cfg, rcfg = settings.vectors.align, settings.replay
    data, ids = forward or read_forward_day(run)
    day = data.model_day
    authored = author_texts(store, day, READER)
    text_of = dict(zip(authored.author_ids, authored.texts, strict=True))
    a_texts = [text_of[int(a)] for a in data.author_ids]
    u_index = data.user_index
    ok_users, _ = preference_texts(store, day, READER)
    val = [r for r in ok_users if r["user_id"] in u_index
           and data.split[u_index[r["user_id"]]] == "val"]
    rows = np.array([u_index[r["user_id"]] for r in val], np.int64)
    scorers: dict[str, Scorer] = {}
    for name, encoder in encoders.items():
        users = np.zeros((len(data.user_ids), encoder.dim), np.float32)
        if len(rows):
            users[rows] = encoder.encode([r["text"] for r in val], f"{name} preference texts")
        scorers[name] = Scorer(name, users, encoder.encode(a_texts, f"{name} author texts"))
    n_users, n_items = len(data.user_ids), len(data.author_ids)
    mask = np.zeros(n_users, bool)
    mask[rows] = True
    s = scored_impressions(dataclasses.replace(data, has_vector=mask))
    weights, tried = {}, {}
    for name in encoders:
        weights[name], tried[name] = choose_weight(scorers[name], ids, s, rows,
                                                   cfg.fusion_weights)
    models = {**scorers, **{f"fused_{n}": fuse(scorers[n], ids, weights[n], rows)
                            for n in encoders},
              "als": ids,
              "popularity": popularity(data.train_users, data.train_items, n_users, n_items)}
    k = min(cfg.gate_hr_k, n_items)
    out_rows: list[dict[str, Any]] = []
    per = {n: M.grouped_auc(s.user, pair_scores(m, s.user, s.author), s.clicked)
           for n, m in models.items()}
    valid = next(iter(per.values())).valid
    groups = np.unique(s.user)[valid] if len(s.user) else np.zeros(0, np.int64)
    watched = s.clicked if rcfg.watched == "clicked" else s.gifted
    req_users, positives = requests_with_positives(s, watched)
    hits = {n: M.hits_per_query(m.users[req_users], m.items, positives, (k,), rcfg.score_batch)[k]
            for n, m in models.items()}
    for metric, values, users in (("uauc_click", {n: p.auc[valid] for n, p in per.items()},
                                   groups), (f"hr@{k}", hits, req_users)):
        est = U.user_bootstrap(values, users, max(rcfg.bootstrap, 1), rcfg.seed,
                               reference=CHAMPION)
        for name, e in est.items():
            out_rows.append({"metric": metric, "model": name, **e.as_dict(),
                             "n": int(len(values[name]))})
    return {"model_day": day, "rows": out_rows, "fusion_weights": weights,
            "fusion_uauc_by_weight": tried, "hr_k": k,
            "validation_users": int(len(rows)), "impressions": int(len(s.user)),
            "requests": int(len(req_users))}


def _figures(rows: list[dict[str, Any]], model: str) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in rows if r["model"] == model}


def gate_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The gate's figures as the ``gate`` table of ``encoder_alignment``."""
    cols = ("metric", "model", "value", "low", "high", "diff", "diff_low", "diff_high")
    out = {c: [r.get(c) for r in rows] for c in cols}
    out["users"] = [int(r.get("users") or 0) for r in rows]
    out["n"] = [int(r.get("n") or 0) for r in rows]
    return ENCODER_ALIGNMENT.build("gate", out)


# ---------------------------------------------------------------------------------------
# the stage


def align_encoder(run: DayRun) -> dict[str, Any]:
    """Pairs, training, gate, registry and the ``encoder_alignment`` partition of ``ds``.
    Returns what happened (``skipped`` with the reason when nothing could be done)."""
    ds, warehouse_url, store, settings = run.ds, run.url, run.artifacts, run.settings

    cfg = settings.vectors.align
    started = time.perf_counter()
    try:
        if not cfg.enabled:
            raise NothingToAlign("[vectors.align] enabled is false")
        if not settings.vectors.encoder_from_registry:
            raise NothingToAlign("vectors.encoder_from_registry is false: the configured "
                                 "encoder is pinned")
        try:
            day = model_day(ds, store)
        except NoEarlierDay as exc:
            raise NothingToAlign(f"nothing published before {ds} to pair with {ds}'s "
                                 "interactions (the first day)") from exc
        pairs = training_pairs(ds, day, warehouse_url, store, cfg)
        if len(pairs) < cfg.min_pairs:
            raise NothingToAlign(f"{len(pairs)} pairs < min_pairs {cfg.min_pairs}")
    except NothingToAlign as exc:
        log.warning("encoder alignment of %s skipped: %s", ds, exc)
        return {"ds": ds, "skipped": str(exc)}

    if R.champion(warehouse_url, R.ENCODER_REGISTRY) is None:
        ref, version = resolve_encoder(settings.vectors)
        R.register(warehouse_url, R.ModelVersion(
            version, None, None, settings.vectors.encoder, settings.vectors.encoder, "champion",
            "initial champion: the configured encoder (vectors.encoder)", {}),
            R.ENCODER_REGISTRY)
    champ_path, champ_version = serving_encoder(settings, store, warehouse_url, day)
    scratch = Path(tempfile.mkdtemp(prefix="mspa-aligned-"))
    try:
        training = train_encoder(pairs, champ_path, cfg, scratch / "model")

        version = f"{encoder_stem(champ_version)}-aligned-{ds.replace('-', '')}-" \
                  f"{_weights_digest(scratch / 'model')[:8]}"
        prefix = encoder_prefix(version)
        uri = upload_folder(store, scratch / "model", f"{prefix}/model")
        encoders = {CANDIDATE: Encoder(settings.vectors, (str(scratch / "model"), version)),
                    CHAMPION: Encoder(settings.vectors, (champ_path, champ_version))}
        report = evaluate_encoders(run, encoders)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    new, old = _figures(report["rows"], CANDIDATE), _figures(report["rows"], CHAMPION)
    keys = ["uauc_click", f"hr@{report['hr_k']}"]
    decision = R.decide(new, old, cfg.tolerance, keys=keys)
    metrics = {"new": new, "champion": old, "gate": report["rows"], "training": training,
               "fusion_weights": {version: report["fusion_weights"][CANDIDATE],
                                  champ_version: report["fusion_weights"][CHAMPION]},
               "pairs_day": ds, "texts_day": day}
    R.register(warehouse_url, R.ModelVersion(
        version, ds, champ_version, uri, f"artifact:{prefix}/model",
        "champion" if decision.promote else "rejected", decision.reason, metrics),
        R.ENCODER_REGISTRY)
    manifest = {"model_day": day, "new_version": version, "champion_version": champ_version,
                "promoted": decision.promote, "reason": decision.reason,
                "serving": version if decision.promote else champ_version,
                "fusion_weights": metrics["fusion_weights"],
                "fusion_uauc_by_weight": {version: report["fusion_uauc_by_weight"][CANDIDATE],
                                          champ_version: report["fusion_uauc_by_weight"][CHAMPION]},
                "validation_users": report["validation_users"],
                "counts": {"pairs": len(pairs), "users": len(set(
                    pairs.table.column("user_id").to_pylist())),
                    "validation_impressions": report["impressions"],
                    "validation_requests": report["requests"]},
                "training": {k: v for k, v in training.items() if k != "steps"},
                "seconds": round(time.perf_counter() - started, 1)}
    published = ENCODER_ALIGNMENT.publish(
        store, ds, {"pairs": pairs.table, "gate": gate_table(report["rows"])}, manifest)
    log.info("encoder gate for %s: %s", version, decision.reason)
    for r in report["rows"]:
        log.info("  %-12s %-26s %.4f [%.4f, %.4f]", r["metric"], r["model"],
                 np.nan_to_num(r["value"]), np.nan_to_num(r["low"]), np.nan_to_num(r["high"]))
    log.info("fusion weight (MSPA's share): %s; published %s", metrics["fusion_weights"],
             published.manifest_uri)
    return {"ds": ds, "version": version, "promoted": decision.promote,
            "reason": decision.reason, "manifest": published.manifest_uri,
            "fusion_weights": metrics["fusion_weights"], "seconds": manifest["seconds"]}
