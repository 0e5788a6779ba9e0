"""Typed settings, one object per environment, picked by the single setting ``MSPA_ENV``.

``MSPA_ENV`` is ``local`` (default: SQLite warehouse, ``file://`` artifacts, packaged models)
or ``prod`` (warehouse and object store reached through Airflow connections). Settings hold
no secrets: only connection ids, URIs without credentials and tuning knobs. ``MSPA_HOME``
moves the local data folder (default: ``var/`` in the checkout). ``MSPA_CONFIG`` may name one
more TOML file whose values replace the environment's, key by key (a deployment's tuning, a
scale run's composer backend); it is validated the same way.

Loading validates every value and says what was given, the rule and the fix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ENVIRONMENTS = ("local", "prod")
REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting has a value that breaks its rule; the message names value, rule and fix."""


@dataclass(frozen=True)
class IngestConfig:
    window_days: int = 30
    min_authors: int = 3
    min_tip_days: int = 3
    future_tolerance_minutes: int = 60
    split_salt: str = "mspa-split-v1"
    # Tips with an event time before this day are in the wrong unit (seconds) or corrupt
    # (negative): quarantined as implausible_timestamp.
    earliest_event_date: str = "2010-01-01"
    max_amount: float = 100_000.0                   # larger (or NaN/Infinity): invalid_amount

    def __post_init__(self) -> None:
        try:
            dt.date.fromisoformat(self.earliest_event_date)
            iso = True
        except (TypeError, ValueError):
            iso = False
        _check(iso, "ingest.earliest_event_date", self.earliest_event_date,
               "must be a date in YYYY-MM-DD form")
        _check(0 < self.max_amount < float("inf"), "ingest.max_amount", self.max_amount,
               "must be a finite amount > 0")
        _check(1 <= self.window_days <= 365, "ingest.window_days", self.window_days,
               "must be between 1 and 365 days")
        _check(self.min_authors >= 1, "ingest.min_authors", self.min_authors,
               "must be at least 1 (the paper uses 3)")
        _check(1 <= self.min_tip_days <= self.window_days, "ingest.min_tip_days",
               self.min_tip_days, f"must be between 1 and window_days ({self.window_days})")
        _check(self.future_tolerance_minutes >= 0, "ingest.future_tolerance_minutes",
               self.future_tolerance_minutes, "must be >= 0")
        _check(bool(self.split_salt), "ingest.split_salt", self.split_salt,
               "must be non-empty; changing it reshuffles every user's split")


@dataclass(frozen=True)
class QualityConfig:
    volume_ratio_min: float = 0.5
    volume_ratio_max: float = 2.0
    max_null_key_rate: float = 0.01
    max_duplicate_rate: float = 0.01
    max_quarantine_rate: float = 0.05
    max_staleness_hours: float = 6.0
    # What the filters kept: each an absolute floor, and (users, authors, share of candidate
    # events) a ratio against the previous published day within [kept_ratio_min, _max].
    min_kept_users: int = 10
    min_kept_authors: int = 20
    min_kept_event_share: float = 0.2
    kept_ratio_min: float = 0.5
    kept_ratio_max: float = 2.0

    def __post_init__(self) -> None:
        _check(0 < self.kept_ratio_min <= 1 <= self.kept_ratio_max,
               "quality.kept_ratio_min/max", (self.kept_ratio_min, self.kept_ratio_max),
               "need 0 < min <= 1 <= max")
        for name in ("min_kept_users", "min_kept_authors"):
            _check(getattr(self, name) >= 1, f"quality.{name}", getattr(self, name),
                   "must be >= 1: a day that keeps nobody is never published")
        _check(0 < self.min_kept_event_share <= 1, "quality.min_kept_event_share",
               self.min_kept_event_share, "is a share, > 0 and at most 1")
        _check(0 < self.volume_ratio_min <= 1 <= self.volume_ratio_max,
               "quality.volume_ratio_min/max", (self.volume_ratio_min, self.volume_ratio_max),
               "need 0 < min <= 1 <= max")
        for name in ("max_null_key_rate", "max_duplicate_rate", "max_quarantine_rate"):
            value = getattr(self, name)
            _check(0 <= value <= 1, f"quality.{name}", value, "is a share, between 0 and 1")
        _check(self.max_staleness_hours > 0, "quality.max_staleness_hours",
               self.max_staleness_hours, "must be > 0")


@dataclass(frozen=True)
class ComposeConfig:
    """The composer: model, batching, budgets, retries and sharding."""

    model: str = "packaged:smollm2-135m-instruct"  # or a hub id / local folder
    backend: str = "text"                           # text | vision | keywords (no model)
    batch_size: int = 16
    max_new_tokens: int = 16                        # per section (one line each)
    max_input_chars: int = 900                      # a user's fenced data block
    min_author_chars: int = 150                     # floor per tipped author
    author_max_chars: int = 600                     # an author's fenced data block
    retries: int = 2                                # sampled re-tries of a failing text
    n_shards: int = 2                               # user shards and author shards each
    frames_as: str = "captions"                     # captions (text model) | images (vision)
    # Answers may use only the data's own tokens (plus connectors): for very small models,
    # which otherwise drift off the data. Off for production-size models.
    extractive: bool = True
    preference_prompt: str = "preference_v1"
    author_prompt: str = "author_v1"
    sample_size: int = 20

    def __post_init__(self) -> None:
        _check(self.backend in ("text", "vision", "keywords"), "compose.backend", self.backend,
               "must be 'text', 'vision' or 'keywords'")
        _check(self.frames_as in ("captions", "images"), "compose.frames_as", self.frames_as,
               "must be 'captions' or 'images'")
        _check(not (self.backend == "text" and self.frames_as == "images"),
               "compose.frames_as", self.frames_as,
               "needs backend 'vision'; a text-only model reads frames as captions")
        for name in ("batch_size", "max_new_tokens", "n_shards", "min_author_chars"):
            _check(getattr(self, name) >= 1, f"compose.{name}", getattr(self, name),
                   "must be >= 1")
        _check(self.max_input_chars >= self.min_author_chars, "compose.max_input_chars",
               self.max_input_chars, f"must be >= min_author_chars ({self.min_author_chars})")
        _check(self.retries >= 0, "compose.retries", self.retries, "must be >= 0")


INDEX_TYPES = ("FLAT", "IVF_FLAT", "HNSW")


@dataclass(frozen=True)
class VectorsConfig:
    """Encoding and the Milvus refresh: encoder, collection, index, gate and retention."""

    encoder: str = "packaged:all-minilm-l6-v2"      # or a hub id / local folder
    encode_batch_size: int = 64
    milvus_conn_id: str = "mspa_milvus"             # used when defined; otherwise milvus_uri
    milvus_uri: str = ""                            # credential-free local URI (a lite file)
    alias: str = "mspa_authors"                     # what consumers search
    index_type: str = "FLAT"
    index_params: dict = field(default_factory=dict)
    search_params: dict = field(default_factory=dict)
    insert_batch: int = 1000
    keep_versions: int = 3                          # published versions kept, serving included
    # Builds of other runs (building/built/validated) younger than this are never dropped by
    # retention: an interleaved backfill may still be validating or replaying them.
    inflight_grace_hours: float = 24.0
    recall_k: int = 1000                            # recall@K of the gate (clamped, see gate)
    recall_sample: int = 50                         # query vectors the gate checks
    min_recall: float = 0.99
    spot_checks: int = 20                           # authors searched by their own vector
    search_batch: int = 10                          # queries per search call (gRPC 256 MB cap)

    def __post_init__(self) -> None:
        _check(self.index_type in INDEX_TYPES, "vectors.index_type", self.index_type,
               f"must be one of {', '.join(INDEX_TYPES)}")
        _check(self.alias.replace("_", "a").isalnum() and not self.alias[0].isdigit(),
               "vectors.alias", self.alias, "must be letters, digits and _ (Milvus names)")
        for name in ("encode_batch_size", "insert_batch", "keep_versions", "recall_k",
                     "recall_sample", "search_batch"):
            _check(getattr(self, name) >= 1, f"vectors.{name}", getattr(self, name),
                   "must be >= 1")
        _check(0 <= self.min_recall <= 1, "vectors.min_recall", self.min_recall,
               "is a share, between 0 and 1")
        _check(self.inflight_grace_hours > 0, "vectors.inflight_grace_hours",
               self.inflight_grace_hours, "must be > 0 (longer than a day's refresh takes)")
        _check(self.spot_checks >= 0, "vectors.spot_checks", self.spot_checks, "must be >= 0")
        _check("@" not in self.milvus_uri and "token" not in self.milvus_uri.lower(),
               "vectors.milvus_uri", "<redacted>",
               f"must carry no credentials; put the token in the Airflow connection "
               f"'{self.milvus_conn_id}'")


LAUNCHERS = ("local", "kubernetes")


@dataclass(frozen=True)
class AlignConfig:
    """MSPA's self-corrective preference alignment: examples, GRPO, evaluation gate, pod."""

    base_model: str = "packaged:smollm2-135m-instruct"  # the first champion; hub id/folder/s3://
    train_m: tuple[int, ...] = (4, 10)              # candidate-set sizes trained on
    eval_m: tuple[int, ...] = (4, 10)               # Acc@m reported and gated
    history_chars: int = 600                        # the user's fenced history block
    candidate_chars: int = 160                      # one candidate's line
    candidate_salt: str = "mspa-candidates-v1"
    max_train_users: int = 0                        # 0 = every train user
    max_eval_users: int = 0                         # 0 = every validation user
    # GRPO (TRL GRPOTrainer). The paper uses a KL penalty; TRL's default beta is 0.
    num_generations: int = 4                        # group size
    per_device_train_batch_size: int = 4            # completions per step; multiple of the group
    gradient_accumulation_steps: int = 1
    beta: float = 0.04
    learning_rate: float = 1e-5
    max_steps: int = 8
    max_completion_length: int = 64
    temperature: float = 1.0
    rewards: tuple[str, ...] = ("accuracy", "format", "similarity")
    reward_weights: tuple[float, ...] = (1.0, 0.5, 0.5)  # lambda1..lambda3, in `rewards` order
    seed: int = 0
    bf16: bool = False
    gradient_checkpointing: bool = False
    eval_batch_size: int = 8
    eval_max_new_tokens: int = 64
    tolerance: float = 0.02                         # promote if Acc@m >= champion's - tolerance
    use_champion: bool = True                       # the composer writes with the champion
    launcher: str = "local"                         # local subprocess | kubernetes pod
    pod: dict = field(default_factory=dict)         # image, namespace, resources, ... (prod)

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_m", tuple(int(m) for m in self.train_m))
        object.__setattr__(self, "eval_m", tuple(int(m) for m in self.eval_m))
        object.__setattr__(self, "rewards", tuple(self.rewards))
        object.__setattr__(self, "reward_weights", tuple(float(w) for w in self.reward_weights))
        for name in ("train_m", "eval_m"):
            _check(bool(getattr(self, name)) and min(getattr(self, name)) >= 2, f"align.{name}",
                   getattr(self, name), "needs sizes >= 2 (the ground truth and a negative)")
        _check(self.num_generations >= 2, "align.num_generations", self.num_generations,
               "must be >= 2: GRPO's advantage compares completions within a group")
        _check(self.per_device_train_batch_size % self.num_generations == 0,
               "align.per_device_train_batch_size", self.per_device_train_batch_size,
               f"must be a multiple of num_generations ({self.num_generations})")
        _check(len(self.reward_weights) == len(self.rewards), "align.reward_weights",
               self.reward_weights, f"needs one weight per reward {list(self.rewards)}")
        _check(self.beta >= 0, "align.beta", self.beta, "must be >= 0")
        _check(self.learning_rate > 0, "align.learning_rate", self.learning_rate, "must be > 0")
        for name in ("max_steps", "max_completion_length", "eval_batch_size",
                     "eval_max_new_tokens", "history_chars", "candidate_chars",
                     "gradient_accumulation_steps"):
            _check(getattr(self, name) >= 1, f"align.{name}", getattr(self, name),
                   "must be >= 1")
        _check(0 <= self.tolerance <= 1, "align.tolerance", self.tolerance,
               "is a share of accuracy, between 0 and 1")
        _check(self.launcher in LAUNCHERS, "align.launcher", self.launcher,
               f"must be one of {', '.join(LAUNCHERS)}")


@dataclass(frozen=True)
class ReplayConfig:
    """The offline replay of ``ds``'s requests and its report (``mspa_tasks.replay``)."""

    watched: str = "clicked"                        # the impression flag that means "watched"
    hr_ks: tuple[int, ...] = (10, 50, 100, 500, 1000)  # the HR@K curve
    hr_k: int = 1000                                # the headline HR@K
    topk_ks: tuple[int, ...] = (5, 10)              # Recall@K / NDCG@K on test users
    score_batch: int = 512                          # queries per matrix product
    ann_sample: int = 50                            # requests replayed through the Milvus alias
    acc_max_users: int = 32                         # test users the champion LLM answers (0 = all)
    a2a_triples: int = 2000                         # author triples from the world's latents
    als_factors: int = 32
    als_iterations: int = 15
    als_regularization: float = 0.05
    seed: int = 0
    trend_days: int = 14                            # days shown in the report's trend plot
    report_prefix: str = "reports/replay"

    def __post_init__(self) -> None:
        object.__setattr__(self, "hr_ks", tuple(sorted({int(k) for k in self.hr_ks})))
        object.__setattr__(self, "topk_ks", tuple(sorted({int(k) for k in self.topk_ks})))
        _check(self.watched in ("clicked", "gifted"), "replay.watched", self.watched,
               "must be clicked or gifted")
        _check(bool(self.hr_ks) and min(self.hr_ks) >= 1, "replay.hr_ks", self.hr_ks,
               "needs sizes >= 1")
        _check(self.hr_k in self.hr_ks, "replay.hr_k", self.hr_k,
               f"must be one of hr_ks {list(self.hr_ks)}")
        _check(bool(self.topk_ks) and min(self.topk_ks) >= 1, "replay.topk_ks", self.topk_ks,
               "needs sizes >= 1")
        for name in ("score_batch", "als_factors", "als_iterations", "trend_days"):
            _check(getattr(self, name) >= 1, f"replay.{name}", getattr(self, name),
                   "must be >= 1")
        for name in ("ann_sample", "acc_max_users", "a2a_triples"):
            _check(getattr(self, name) >= 0, f"replay.{name}", getattr(self, name),
                   "must be >= 0")


@dataclass(frozen=True)
class AlertsConfig:
    """Failure and deadline notifications (``mspa_airflow.alerts``); off by default."""

    enabled: bool = False
    http_conn_id: str = "mspa_alerts"   # an Airflow HTTP connection: the webhook and its auth
    endpoint: str = ""                  # path under the connection's host, if any
    # A DeadlineAlert on mspa_daily: runs not finished this long after being queued alert.
    # 0 = none (the embedded default: `airflow dags test` on Airflow 3.3.2 crashes on one).
    deadline_hours: float = 0.0

    def __post_init__(self) -> None:
        _check(0 <= self.deadline_hours <= 48, "alerts.deadline_hours", self.deadline_hours,
               "must be between 0 (no deadline) and 48 hours")


@dataclass(frozen=True)
class WorldConfig:
    preset: str = "demo"
    end_ds: str = "2026-11-20"


@dataclass(frozen=True)
class Settings:
    env: str
    home: Path
    warehouse_conn_id: str
    warehouse_url: str
    artifacts_uri: str
    artifacts_conn_id: str
    models_dir: Path
    ingest: IngestConfig = field(default_factory=IngestConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    vectors: VectorsConfig = field(default_factory=VectorsConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self) -> None:
        _check(self.env in ENVIRONMENTS, "MSPA_ENV", self.env,
               f"must be one of {', '.join(ENVIRONMENTS)}")
        _check(self.artifacts_uri.startswith(("file://", "s3://")), "artifacts_uri",
               self.artifacts_uri, "must start with file:// or s3://")
        _check(bool(self.warehouse_url or self.warehouse_conn_id), "warehouse_url",
               self.warehouse_url, "set warehouse_url or warehouse_conn_id")
        _check("@" not in self.warehouse_url, "warehouse_url", "<redacted>",
               "must carry no credentials; put them in the Airflow connection "
               f"'{self.warehouse_conn_id}'")

    def fingerprint(self) -> str:
        """A stable hash of every setting, recorded in manifests as the config version."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def with_ingest(self, **changes: object) -> Settings:
        """A copy with some ingest knobs replaced (e.g. from a DAG run's Params)."""
        return dataclasses.replace(self, ingest=dataclasses.replace(self.ingest, **changes))

    def with_compose(self, **changes: object) -> Settings:
        return dataclasses.replace(self, compose=dataclasses.replace(self.compose, **changes))

    def with_align(self, **changes: object) -> Settings:
        return dataclasses.replace(self, align=dataclasses.replace(self.align, **changes))


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ConfigError(f"setting {name}={value!r} is invalid: it {rule}.")


_TOML_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
               "dict": (dict,)}


def _check_type(name: str, value: object, f: dataclasses.Field) -> None:
    """Refuse a TOML value of the wrong type (``window_days = "30"``) with a ConfigError
    that names the key, the value and the type wanted, before a comparison raises TypeError.

    >>> _check_type("ingest.window_days", "30", dataclasses.fields(IngestConfig)[0])
    Traceback (most recent call last):
    ...
    mspa_tasks.config.ConfigError: setting ingest.window_days='30' is invalid: it must be an int (write it without quotes: window_days = 30).
    """
    kind = str(f.type).split("[")[0].split(" |")[0].strip()
    if kind.startswith("tuple"):
        ok = isinstance(value, list | tuple)
        wanted = "a list"
    else:
        types = _TOML_TYPES.get(kind)
        if types is None:
            return
        ok = isinstance(value, types) and (kind == "bool" or not isinstance(value, bool))
        wanted = f"a{'n' if kind == 'int' else ''} {kind}"
    if not ok:
        hint = ""
        if isinstance(value, str) and kind in ("int", "float"):
            hint = f" (write it without quotes: {name.split('.')[-1]} = {value})"
        _check(False, name, value, f"must be {wanted}{hint}")


def default_home() -> Path:
    return Path(os.environ.get("MSPA_HOME") or REPO_ROOT / "var").resolve()


def merge_overrides(raw: dict, path: Path) -> dict:
    """``raw`` with the values of the TOML file ``path`` put over it (tables merged key by
    key); unknown keys are refused later, like the environment file's own."""
    try:
        extra = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"MSPA_CONFIG={str(path)!r} cannot be read as TOML: {exc}") from exc
    merged = dict(raw)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_settings(env: str | None = None, home: Path | str | None = None) -> Settings:
    """Load and validate the settings of ``env`` (default: ``$MSPA_ENV`` or ``local``)."""
    env = env or os.environ.get("MSPA_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ConfigError(
            f"setting MSPA_ENV={env!r} is invalid: it must be one of {', '.join(ENVIRONMENTS)}."
        )
    raw = tomllib.loads((Path(__file__).parent / "conf" / f"{env}.toml").read_text())
    override = os.environ.get("MSPA_CONFIG")
    if override:
        raw = merge_overrides(raw, Path(override))
    home_path = Path(home).resolve() if home else default_home()

    def expand(value: str) -> str:
        return value.replace("{home}", str(home_path))

    sections = {"ingest": IngestConfig, "quality": QualityConfig, "compose": ComposeConfig,
                "vectors": VectorsConfig, "align": AlignConfig, "replay": ReplayConfig,
                "alerts": AlertsConfig, "world": WorldConfig}
    typed = {}
    for key, cls in sections.items():
        values = raw.pop(key, {})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)} in [{key}] of {env}.toml")
        if key == "vectors" and "milvus_uri" in values:
            values["milvus_uri"] = expand(values["milvus_uri"])
        for f in dataclasses.fields(cls):
            if f.name in values:
                _check_type(f"{key}.{f.name}", values[f.name], f)
        typed[key] = cls(**values)
    return Settings(
        env=raw["env"],
        home=home_path,
        warehouse_conn_id=raw.get("warehouse_conn_id", ""),
        warehouse_url=expand(raw.get("warehouse_url", "")),
        artifacts_uri=expand(raw["artifacts_uri"]),
        artifacts_conn_id=raw.get("artifacts_conn_id", ""),
        models_dir=Path(expand(raw["models_dir"])),
        **typed,
    )
