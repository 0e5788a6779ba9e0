"""Typed settings, one object per environment, picked by the single setting ``MSPA_ENV``.

``MSPA_ENV`` is ``local`` (default: SQLite warehouse, ``file://`` artifacts, packaged models)
or ``prod`` (warehouse and object store reached through Airflow connections). Settings hold
no secrets: only connection ids, URIs without credentials and tuning knobs. ``MSPA_HOME``
moves the local data folder (default: ``var/`` in the checkout). ``MSPA_CONFIG`` may name one
more TOML file whose values replace the environment's, key by key (a deployment's tuning, a
scale run's composer backend); it is validated the same way.

The models below are the one place for defaults, rules and descriptions (pydantic-settings,
strict types, unknown keys refused); ``conf/<env>.toml`` holds only what an environment sets
differently, and the DAGs' Params take their bounds from the same fields
(:func:`param_schema`). A bad value is one line naming the key, the value, the rule and the
fix (:class:`ConfigError`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import logging
import math
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mspa_tasks.artifacts import URI_SAFE, StoreURIError, local_root

ENVIRONMENTS = ("local", "prod")
REPO_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = Path(__file__).parent / "conf"
log = logging.getLogger(__name__)

# TOML arrays arrive as lists: tuples of strict items, the container itself coerced.
Ints = Annotated[tuple[StrictInt, ...], Field(strict=False)]
Floats = Annotated[tuple[StrictInt | StrictFloat, ...], Field(strict=False)]
Names = Annotated[tuple[StrictStr, ...], Field(strict=False)]
Share = Annotated[float, Field(ge=0, le=1)]
RewardNames = Annotated[
    tuple[Literal["accuracy", "format", "similarity", "similarity_rank"], ...],
    Field(strict=False)]


class ConfigError(ValueError):
    """A setting has a value that breaks its rule; the message names value, rule and fix."""


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    """A rule between fields (or one a Field constraint cannot state), as a ConfigError."""
    if not ok:
        raise ConfigError(f"setting {name}={value!r} is invalid: it {rule}.")


_KINDS = {"int_type": "an int", "int_from_float": "an int", "float_type": "a float",
          "bool_type": "a bool", "string_type": "a str", "tuple_type": "a list",
          "list_type": "a list", "dict_type": "a table", "model_type": "a table",
          "model_attributes_type": "a table", "is_instance_of": "a path"}
_BOUNDS = {"greater_than_equal": ("ge", ">="), "greater_than": ("gt", ">"),
           "less_than_equal": ("le", "<="), "less_than": ("lt", "<")}


def _field_rule(model: type[BaseModel], field: str, error: dict) -> str:
    """The rule a pydantic error broke, in words, with the fix: the field's allowed range
    or choices, its default and what it means."""
    kind, ctx = error["type"], error.get("ctx", {})
    info = model.model_fields.get(field)
    if kind in _BOUNDS and info is not None:
        bounds = {key: getattr(item, key) for item in info.metadata
                  for key in ("ge", "gt", "le", "lt") if getattr(item, key, None) is not None}
        low = bounds.get("ge", bounds.get("gt"))
        high = bounds.get("le", bounds.get("lt"))
        rule = (f"must be between {low} and {high}" if "ge" in bounds and "le" in bounds
                else f"must be {_BOUNDS[kind][1]} {ctx[_BOUNDS[kind][0]]}")
    elif kind == "literal_error":
        value = error.get("input")
        rule = f"must be {'' if isinstance(value, str) else 'a str, '}one of {ctx['expected']}"
    elif kind in _KINDS:
        rule = f"must be {_KINDS[kind]}"
        value = error.get("input")
        if isinstance(value, str) and kind in ("int_type", "float_type"):
            rule += f" (write it without quotes: {field} = {value})"
    elif kind == "string_pattern_mismatch":
        rule = f"must match the pattern {ctx['pattern']!r}"
    elif kind == "finite_number":
        rule = "must be a finite number"
    else:
        rule = error["msg"][0].lower() + error["msg"][1:]
    if info is not None and kind not in _KINDS:
        notes = [info.description] if info.description else []
        if not info.is_required():
            notes.append(f"default {info.get_default(call_default_factory=True)!r}")
        rule += f" ({'; '.join(notes)})" if notes else ""
    return rule


def _config_error(model: type[BaseModel], section: str, exc: ValidationError) -> ConfigError:
    """The first error of ``exc`` as one line: key, value, rule and fix."""
    first = exc.errors(include_url=False)[0]
    original = first.get("ctx", {}).get("error")
    if isinstance(original, ConfigError):
        return original
    loc = [str(p) for p in first["loc"]]
    if first["type"] == "extra_forbidden":
        unknown = sorted(e["loc"][-1] for e in exc.errors() if e["type"] == "extra_forbidden")
        where = ".".join([section, *loc[:-1]]).strip(".")
        owner = _nested_model(model, loc[:-1])
        known = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(unknown[0]), known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
        return ConfigError(f"unknown setting(s) {unknown} in [{where}]: {fix}")
    owner = _nested_model(model, loc[:-1]) or model
    name = ".".join([section, *loc]).strip(".")
    value = first.get("input")
    if isinstance(value, float) and math.isnan(value):
        value = "nan"
    return ConfigError(f"setting {name}={value!r} is invalid: it "
                       f"{_field_rule(owner, loc[-1] if loc else '', first)}.")


def _nested_model(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    for part in path:
        info = model.model_fields.get(part)
        annotation = getattr(info, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


class Section(BaseModel):
    """One ``[section]`` of the config: frozen, strict, unknown keys refused; a bad value
    raises :class:`ConfigError` (not pydantic's multi-line ValidationError)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True,
                              validate_default=True)
    section: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(type(self), self.section, exc) from None

    def replaced(self, **changes: Any):
        """A validated copy with some values replaced (``model_copy`` would not validate); a
        sub-section given as a dict has only those values replaced
        (``align.replaced(grpo={"max_steps": 2})``)."""
        data = _with_changes(dict(self), changes)
        return type(self)(**{k: v.model_dump() if isinstance(v, Section) else v
                             for k, v in data.items()})


def _with_changes(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``changes`` put over it: a (sub-)section given as a dict has only those
    values replaced, anything else is set."""
    for key, value in changes.items():
        current = data.get(key)
        data[key] = current.replaced(**value) if isinstance(current, Section) \
            and isinstance(value, dict) else value
    return data


class IngestConfig(Section):
    section: ClassVar[str] = "ingest"

    window_days: int = Field(30, ge=1, le=365, description="days of tipping history ending at ds")
    min_authors: int = Field(3, ge=1, description="drop users who tipped fewer distinct "
                                                  "authors (the paper uses 3)")
    min_tip_days: int = Field(3, ge=1, description="drop users who tipped on fewer distinct days")
    future_tolerance_minutes: int = Field(
        60, ge=0,
        description="an event time later than its landing time by more is future_timestamp")
    split_salt: str = Field("mspa-split-v1", min_length=1,
                            description="changing it reshuffles every user's split")
    # Tips with an event time before this day are in the wrong unit (seconds) or corrupt
    # (negative): quarantined as implausible_timestamp.
    earliest_event_date: str = Field(
        "2010-01-01",
        description="event times before this day are in the wrong unit (seconds) or corrupt: "
        "implausible_timestamp")
    max_amount: float = Field(100_000.0, gt=0, allow_inf_nan=False,
                              description="larger (or NaN/Infinity): invalid_amount")
    # The paper's author filters, per source: KuaiLive has no frames at all, so its settings
    # (conf/sources/kuailive.toml) turn the image filter off rather than drop every streamer.
    require_author_text: bool = Field(True, description="drop authors whose profile has no "
                                      "intro (no_text, the paper's no-text filter)")
    require_author_image: bool = Field(True, description="drop authors with no frame before "
                                       "the window's end (no_image, the paper's no-image "
                                       "filter)")

    @field_validator("earliest_event_date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            _check(False, "ingest.earliest_event_date", value, "must be a date in YYYY-MM-DD form")
        return value

    @model_validator(mode="after")
    def _tip_days_within_window(self) -> IngestConfig:
        _check(self.min_tip_days <= self.window_days, "ingest.min_tip_days", self.min_tip_days,
               f"must be between 1 and window_days ({self.window_days})")
        return self


def _ratio_band(section: str, low: float, high: float) -> None:
    _check(0 < low <= 1 <= high, f"{section}_min/max", (low, high), "needs 0 < min <= 1 <= max")


class QualityConfig(Section):
    section: ClassVar[str] = "quality"

    volume_ratio_min: float = Field(
        0.5,
        description="lowest ratio of the day's candidate events to the previous published day's")
    volume_ratio_max: float = Field(
        2.0,
        description="highest ratio of the day's candidate events to the previous published day's")
    max_null_key_rate: Share = Field(0.01, description="a share")
    max_duplicate_rate: Share = Field(0.01, description="a share")
    max_quarantine_rate: Share = Field(0.05, description="a share")
    max_staleness_hours: float = Field(
        6.0, gt=0,
        description="the newest landed event may be at most this old at the window's end")
    # What the filters kept: each an absolute floor, and (users, authors, share of candidate
    # events) a ratio against the previous published day within [kept_ratio_min, _max].
    min_kept_users: int = Field(10, ge=1, description="a day that keeps nobody is never "
                                                      "published")
    min_kept_authors: int = Field(20, ge=1, description="a day that keeps nobody is never "
                                                        "published")
    min_kept_event_share: float = Field(0.2, gt=0, le=1, description="a share")
    kept_ratio_min: float = Field(
        0.5,
        description="lowest ratio of kept users, authors and event share to the previous "
        "published day's")
    kept_ratio_max: float = Field(
        2.0,
        description="highest ratio of kept users, authors and event share to the previous "
        "published day's")

    @model_validator(mode="after")
    def _bands(self) -> QualityConfig:
        _ratio_band("quality.kept_ratio", self.kept_ratio_min, self.kept_ratio_max)
        _ratio_band("quality.volume_ratio", self.volume_ratio_min, self.volume_ratio_max)
        return self


class PodConfig(Section):
    """``[align.pod]``: the trainer pod of ``launcher = "kubernetes"``."""

    section: ClassVar[str] = "align.pod"

    image: str = Field(
        "mspa/trainer:0.1.0",
        description="the trainer image")
    namespace: str = Field(
        "default",
        description="Kubernetes namespace of the pod")
    service_account: str = Field(
        "",
        description="the pod's service account (its cloud role for the object store)")
    gpus: int = Field(
        1, ge=1,
        description="GPUs the pod requests")
    cpu: str = Field(
        "8",
        description="CPU the pod requests")
    memory: str = Field(
        "64Gi",
        description="memory the pod requests")
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="labels of the nodes the pod may run on")
    tolerations: list[dict[str, str]] = Field(
        default_factory=list,
        description="taints the pod tolerates (GPU nodes)")
    secrets: Names = Field(
        (),
        description="Kubernetes secrets mounted as environment variables")
    startup_timeout_seconds: int = Field(
        1800, ge=1,
        description="seconds the pod may take to start")
    # Kubernetes kills a pod that outlives this, whatever Airflow's deferral state (the KPO's
    # execution_timeout is not enforced after deferral: an open lifecycle bug).
    active_deadline_seconds: int = Field(
        12 * 3600, ge=1,
        description="Kubernetes kills a pod that outlives this, whatever Airflow's deferral state")
    shm_size: str = Field(
        "16Gi",
        description="shared memory of the pod (NCCL, data loaders)")
    run_as_user: int = Field(1000, ge=1, description="non-root")


class ComposeConfig(Section):
    """The composer: model, batching, budgets, retries and sharding."""

    section: ClassVar[str] = "compose"

    model: str = Field(
        "packaged:smollm2-135m-instruct",
        description="the composer's model: packaged:..., a hub id or a local folder")
    # text: transformers in-process; openai: an OpenAI-compatible server (vLLM, SGLang,
    # llama.cpp) at openai_base_url; keywords: no model
    backend: Literal["text", "vision", "keywords", "openai"] = Field(
        "text",
        description="text: transformers in process; vision: frames as images; openai: an OpenAI-"
        "compatible server at openai_base_url; keywords: no model")
    batch_size: int = Field(
        16, ge=1,
        description="prompts generated per batch")
    max_new_tokens: int = Field(16, ge=1, description="per section (one line each)")
    max_input_chars: int = Field(900, ge=1, description="a user's fenced data block")
    min_author_chars: int = Field(150, ge=1, description="floor per tipped author")
    author_max_chars: int = Field(600, ge=1, description="an author's fenced data block")
    retries: int = Field(2, ge=0, description="sampled re-tries of a failing text")
    n_shards: int = Field(2, ge=1, description="user shards and author shards each")
    frames_as: Literal["captions", "images"] = Field(
        "captions",
        description="how a frame reaches the model: its caption, or the image (needs backend "
        "vision)")
    # Answers may use only the data's own tokens (plus connectors): for very small models,
    # which otherwise drift off the data. Off for production-size models.
    extractive: bool = Field(
        True,
        description="answers use only the data's own words (plus connectors): for very small "
        "models; off for production-size models")
    preference_prompt: str = Field(
        "preference_v1",
        description="the versioned preference prompt (llm/prompts/<name>.toml)")
    author_prompt: str = Field(
        "author_v1",
        description="the versioned author prompt (llm/prompts/<name>.toml)")
    sample_size: int = Field(
        20, ge=0,
        description="texts shown in the day's sample report")
    # backend "openai" (mspa_tasks/llm/openai_backend.py): the server, the name it serves
    # `model` under, requests in flight, and the retry policy. The key, if any, comes from the
    # environment variable named here, never from a file.
    openai_base_url: str = Field("", description="e.g. http://vllm:8000/v1")
    openai_model: str = Field("", description="the served model's name (default: model)")
    openai_api_key_env: str = Field(
        "MSPA_LLM_API_KEY",
        description="the environment variable that holds the server's API key (never the key "
        "itself)")
    openai_concurrency: int = Field(8, ge=1, description="requests in flight")
    openai_timeout_s: float = Field(
        120.0, gt=0,
        description="seconds before a request to the server is retried")
    openai_max_retries: int = Field(
        4, ge=0,
        description="retries of a failed request, with backoff")
    openai_backoff_s: float = Field(0.5, ge=0, description="first retry's delay, doubled each")
    # shards: every compose_shard task generates its misses (in-process or on the openai
    # server); batch: compose.batch_generate writes the day's misses as OpenAI batch JSONL,
    # vLLM's batch runner answers them in a GPU pod (batch_launcher = "kubernetes", image and
    # resources in [compose.batch_pod]) or the in-process backend does (local), and the
    # shards read the answers (mspa_tasks/compose/batch.py).
    generation: Literal["shards", "batch"] = Field(
        "shards",
        description="shards: each compose_shard generates its misses; batch: "
        "compose.batch_generate runs the day's misses as one OpenAI batch job")
    batch_launcher: Literal["local", "kubernetes"] = Field(
        "local",
        description="where the batch job runs: in process or a Kubernetes pod")
    batch_model: str = Field("", description="the model vLLM loads (default: model)")
    batch_pod: PodConfig = Field(
        default_factory=PodConfig,
        description="the batch job's pod (the trainer image pins vLLM)")

    @model_validator(mode="after")
    def _consistent(self) -> ComposeConfig:
        _check(not (self.backend == "text" and self.frames_as == "images"),
               "compose.frames_as", self.frames_as,
               "needs backend 'vision'; a text-only model reads frames as captions")
        if self.generation == "batch":
            _check(self.frames_as == "captions", "compose.generation", "batch",
                   "sends text requests: frames_as must be 'captions' (images in batch JSONL "
                   "are not built)")
        if self.backend == "openai":
            _check(bool(self.openai_base_url), "compose.openai_base_url", "",
                   "is needed by backend 'openai'")
            _check("@" not in self.openai_base_url, "compose.openai_base_url", "<redacted>",
                   "must carry no credentials (openai_api_key_env names the variable)")
            _check(not self.extractive, "compose.extractive", True,
                   "needs logits access; backend 'openai' has none: set extractive = false")
        _check(self.max_input_chars >= self.min_author_chars, "compose.max_input_chars",
               self.max_input_chars, f"must be >= min_author_chars ({self.min_author_chars})")
        return self


class EncoderAlignConfig(Section):
    """``[vectors.align]``: the encoder aligned to the interactions
    (:mod:`mspa_tasks.vectors.alignment`): contrastive fine-tuning on train users' pairs,
    gated on validation users, versioned in ``encoder_registry``."""

    section: ClassVar[str] = "vectors.align"

    enabled: bool = Field(
        True,
        description="fine-tune the serving text encoder each day (off: the champion keeps "
        "encoding)")
    epochs: int = Field(
        2, ge=1,
        description="passes over the day's pairs")
    batch_size: int = Field(32, ge=2, description="in-batch negatives per step")
    learning_rate: float = Field(
        2e-5, gt=0,
        description="learning rate of the contrastive fine-tune")
    warmup_ratio: float = Field(
        0.1, ge=0, lt=1,
        description="share of the steps with a rising learning rate")
    max_pairs_per_user: int = Field(8, ge=1, description="so heavy users do not dominate")
    min_pairs: int = Field(32, ge=1, description="fewer: the day is skipped, said in the log")
    max_seq_length: int = Field(
        128, ge=16,
        description="tokens of a text the encoder reads")
    tolerance: float = Field(0.01, ge=0, description="the gate: a new encoder may trail the "
                                                     "champion by this much on HR@K and UAUC")
    gate_hr_k: int = Field(100, ge=1, description="the HR@K the gate compares")
    fusion_weights: Floats = Field((0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
                                   description="the grid of MSPA's weight in the fused score")
    seed: int = Field(
        0,
        description="seed of the fine-tune")

    @field_validator("fusion_weights")
    @classmethod
    def _weights(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        _check(bool(value) and all(0 <= w <= 1 for w in value), "vectors.align.fusion_weights",
               value, "needs weights in [0, 1]")
        return tuple(sorted(set(value)))


class VectorsConfig(Section):
    """Encoding and the Milvus refresh: encoder, collection, index, gate and retention."""

    section: ClassVar[str] = "vectors"

    encoder: str = Field(
        "packaged:all-minilm-l6-v2",
        description="the text encoder: packaged:..., a hub id or a local folder")
    # The champion of encoder_registry (an aligned encoder) serves instead of `encoder` once
    # one is promoted; false pins `encoder`.
    encoder_from_registry: bool = Field(
        True,
        description="once an aligned encoder is promoted, it encodes instead of encoder (false "
        "pins encoder)")
    align: EncoderAlignConfig = Field(
        default_factory=EncoderAlignConfig,
        description="the daily encoder alignment")
    encode_batch_size: int = Field(
        64, ge=1,
        description="texts encoded per batch")
    milvus_conn_id: str = Field(
        "mspa_milvus",
        description="the Airflow connection of Milvus; used when it exists")
    milvus_uri: str = Field(
        "",
        description="Milvus URI when the connection does not exist: a milvus-lite file (.db) or a"
        " server (no token)")
    alias: str = Field("mspa_authors", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                       description="letters, digits and _ (Milvus names)")
    index_type: Literal["FLAT", "IVF_FLAT", "HNSW"] = Field(
        "FLAT",
        description="the collection's index; only FLAT is exact")
    index_params: dict[str, Any] = Field(
        default_factory=dict,
        description="index build parameters (e.g. M, efConstruction for HNSW)")
    search_params: dict[str, Any] = Field(
        default_factory=dict,
        description="search parameters (e.g. ef for HNSW, nprobe for IVF_FLAT)")
    insert_batch: int = Field(
        1000, ge=1,
        description="rows per insert call")
    keep_versions: int = Field(3, ge=1, description="published versions kept, serving included")
    # Builds of other runs (building/built/validated) younger than this are never dropped by
    # retention: an interleaved backfill may still be validating or replaying them.
    inflight_grace_hours: float = Field(24.0, gt=0, description="longer than a day's refresh "
                                                                "takes")
    recall_k: int = Field(1000, ge=1, description="recall@K of the gate (clamped, see gate)")
    recall_sample: int = Field(50, ge=1, description="query vectors the gate checks")
    min_recall: Share = Field(
        0.99,
        description="the gate's floor on ANN recall@K against exact search")
    spot_checks: int = Field(20, ge=0, description="authors searched by their own vector")
    search_batch: int = Field(10, ge=1, description="queries per search call (gRPC 256 MB cap)")

    @field_validator("milvus_uri")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        _check("@" not in value and "token" not in value.lower(), "vectors.milvus_uri",
               "<redacted>", "must carry no credentials; put the token in the Airflow "
               "connection of vectors.milvus_conn_id")
        return value


class ExamplesConfig(Section):
    """``[align.examples]``: which examples the recommender is trained and evaluated on, and
    what their prompts show."""

    section: ClassVar[str] = "align.examples"

    train_m: Ints = Field((4, 10), description="candidate-set sizes trained on")
    eval_m: Ints = Field((4, 10), description="candidate-set sizes evaluated (Acc@m reported "
                                              "and gated)")
    history_chars: int = Field(600, ge=1, description="the user's fenced history block")
    candidate_format: Literal["structured", "text"] = Field(
        "structured",
        description="a candidate's line: structured (profile | tips | offline when not live "
                    "at the tip | mood: the feature text's atmosphere, cut at section_chars) "
                    "or text (profile, tips, then the feature text, cut at candidate_chars)")
    candidate_chars: int = Field(120, ge=1, description="a text candidate line's length: "
                                                        "profile, tips, then the feature text")
    section_chars: int = Field(32, ge=1, description="a structured line's mood answer, cut "
                                                     "to this")
    candidate_labels: Literal["letters", "ids"] = Field(
        "letters",
        description="how the prompt names its candidates: letters (A, B, ...: one token each, "
                    "so the choice can be read from their probabilities) or the author ids")
    candidate_salt: str = Field(
        "mspa-candidates-v1",
        description="salt of the candidate draws; changing it redraws every example's candidates")
    negatives: Literal["live", "hard"] = Field(
        "live",
        description="the candidate sets' negatives: live (the paper's protocol: random among "
                    "the authors live at the labelled tip, per the warehouse's live_rooms; "
                    "among all authors where it does not say) or hard (half the ground "
                    "truth's nearest neighbours, the rest random)")
    per_user: Literal["every_tip", "last_tip"] = Field(
        "every_tip",
        description="train and validation examples: one per tip after the user's first "
                    "min_history_tips (its history before that tip), or only the last tip; "
                    "test users (the replay) always give their last tip")
    user_side: Literal["history", "preference_text"] = Field(
        "history",
        description="the user's part of a prompt: history (the authors tipped before the "
                    "labelled tip) or preference_text (the paper's input: the composer's text "
                    "of the window ending the day before the labelled tip, which never saw it; "
                    "an example whose day before has no published text is skipped)")
    min_history_tips: int = Field(
        3, ge=1,
        description="tips of history an every_tip example needs before its labelled tip")
    max_train_users: int = Field(0, ge=0, description="cap on train users; 0 = all")
    max_eval_users: int = Field(0, ge=0, description="cap on validation users; 0 = all")
    rerank_m: int = Field(
        10, ge=0,
        description="the replay's two-stage examples: a test user whose held-out tip falls on "
                    "the day gets MSPA's top rerank_m authors (the model day's vectors, which "
                    "never saw that day) in MSPA's order, for the champion to rerank; 0 = none")

    @field_validator("train_m", "eval_m")
    @classmethod
    def _set_sizes(cls, value: tuple[int, ...], info) -> tuple[int, ...]:
        _check(bool(value) and min(value) >= 2, f"align.examples.{info.field_name}", value,
               "needs sizes >= 2 (the ground truth and a negative)")
        return value

    @model_validator(mode="after")
    def _labels_fit(self) -> ExamplesConfig:
        _check(self.candidate_labels == "ids"
               or max((*self.train_m, *self.eval_m, self.rerank_m)) <= 26,
               "align.examples.candidate_labels", self.candidate_labels,
               "letters label at most 26 candidates; use ids for larger sets")
        return self


class SftConfig(Section):
    """``[align.sft]``: the supervised warm start (TRL ``SFTTrainer``) on the train examples'
    ``target``."""

    section: ClassVar[str] = "align.sft"

    max_steps: int = Field(16, ge=1, description="supervised steps of the warm start")
    learning_rate: float = Field(5e-5, gt=0,
                                 description="learning rate of the supervised warm start")
    batch_size: int = Field(4, ge=1, description="examples per supervised step")


class GrpoConfig(Section):
    """``[align.grpo]``: TRL's ``GRPOTrainer`` options, under TRL's names. The paper uses a KL
    penalty; TRL's default beta is 0. Every non-default is chosen for a reason that
    docs/decisions.md ("GRPO options") writes down."""

    section: ClassVar[str] = "align.grpo"

    num_generations: int = Field(4, ge=2, description="GRPO group size: the advantage "
                                                      "compares completions within a group")
    per_device_train_batch_size: int = Field(4, ge=1, description="completions per step; a "
                                                                   "multiple of the group")
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="GRPO micro-batches per optimizer step")
    beta: float = Field(0.04, ge=0, description="KL penalty; 0 disables the reference model")
    learning_rate: float = Field(
        1e-5, gt=0, description="GRPO learning rate (the paper: 1e-6 on a 7B model)")
    max_steps: int = Field(8, ge=1, description="GRPO steps")
    # The three-line answer is 50-65 tokens on the demo world: room for all of it (a cut
    # answer names no author).
    max_completion_length: int = Field(
        80, ge=1,
        description="tokens a GRPO completion may use: room for the whole three-line answer (a "
        "cut answer names no author)")
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the group; "
                                                       "1.0 keeps the group diverse")
    loss_type: Literal["dapo", "dr_grpo", "grpo", "bnpo"] = Field(
        "dapo", description="token-level loss normalisation (TRL's default, no length bias)")
    scale_rewards: Literal["batch", "group", "none"] = Field(
        "batch", description="advantage scaling: batch keeps a correct pick worth more than a "
                             "small similarity difference (group would blow both up to 1 std)")
    multi_objective_aggregation: Literal["sum_then_normalize", "normalize_then_sum"] = Field(
        "sum_then_normalize", description="weight the raw rewards by lambda, then normalise "
                                          "(the paper's r = sum of lambda_i r_i)")
    mask_truncated_completions: bool = Field(
        False, description="true: a completion cut at max_completion_length is left out of "
                           "the loss; false (default): it is scored, so rambling is punished")
    use_vllm: bool = Field(False, description="generate the GRPO groups with vLLM (GPU only; "
                                              "the trainer image has it)")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate",
        description="with use_vllm: generate on the training GPUs (colocate) or on a vLLM server")
    vllm_gpu_memory_utilization: Share = Field(0.3, description="colocate mode: the GPU share "
                                                                "vLLM's cache may take")
    rewards: RewardNames = Field(
        ("accuracy", "format", "similarity"),
        description="the reward functions, in the order of reward_weights: accuracy, format, "
                    "similarity (cosine of the pick to the truth) or similarity_rank (the "
                    "pick's rank by that cosine within the set, 1 to 0)")
    reward_weights: Floats = Field((1.0, 0.5, 0.5), description="lambda1..lambda3, in "
                                                                "`rewards` order")

    @field_validator("reward_weights")
    @classmethod
    def _floats(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(float(w) for w in value)

    @model_validator(mode="after")
    def _consistent(self) -> GrpoConfig:
        _check(self.per_device_train_batch_size % self.num_generations == 0,
               "align.grpo.per_device_train_batch_size", self.per_device_train_batch_size,
               f"must be a multiple of num_generations ({self.num_generations})")
        _check(len(self.reward_weights) == len(self.rewards), "align.grpo.reward_weights",
               self.reward_weights, f"needs one weight per reward {list(self.rewards)}")
        return self


class GateConfig(Section):
    """``[align.gate]``: how a recommender's choices are read and scored, and what a new one
    must show to replace the champion."""

    section: ClassVar[str] = "align.gate"

    choice: Literal["scored", "generated"] = Field(
        "scored",
        description="how the evaluation reads a model's choice: scored (the probability of "
                    "each candidate's letter after 'Recommended author:', a full order of the "
                    "m candidates) or generated (the id or letter its greedy answer names)")
    batch_size: int = Field(
        8, ge=1, description="examples per batch when evaluating a recommender")
    max_new_tokens: int = Field(
        80, ge=1, description="tokens a generated answer may use")
    tolerance: Share = Field(
        0.02,
        description="besides an Acc@m interval above chance and not significantly below the "
                    "champion, Acc@m may trail the champion's by at most this")


# The flat [align] keys before the sub-sections, and where each lives now.
ALIGN_MOVED: dict[str, tuple[str, str]] = {
    **{k: ("examples", k) for k in ("train_m", "eval_m", "history_chars", "candidate_chars",
                                    "candidate_labels", "candidate_salt", "min_history_tips",
                                    "max_train_users", "max_eval_users")},
    "examples_per_user": ("examples", "per_user"),
    "sft_max_steps": ("sft", "max_steps"), "sft_learning_rate": ("sft", "learning_rate"),
    "sft_batch_size": ("sft", "batch_size"),
    **{k: ("grpo", k) for k in ("num_generations", "per_device_train_batch_size",
                                "gradient_accumulation_steps", "beta", "learning_rate",
                                "max_steps", "max_completion_length", "temperature",
                                "loss_type", "scale_rewards", "multi_objective_aggregation",
                                "mask_truncated_completions", "use_vllm", "vllm_mode",
                                "vllm_gpu_memory_utilization", "rewards", "reward_weights")},
    "choice": ("gate", "choice"), "eval_batch_size": ("gate", "batch_size"),
    "eval_max_new_tokens": ("gate", "max_new_tokens"), "tolerance": ("gate", "tolerance"),
}


class AlignConfig(Section):
    """``[align]``: MSPA's self-corrective preference alignment, TRL-style: what is trained and
    where (here), the examples, the SFT warm start, GRPO and the promotion gate (sub-sections)."""

    section: ClassVar[str] = "align"

    base_model: str = Field(
        "packaged:smollm2-135m-instruct",
        description="the first champion recommender: packaged:..., a hub id, a folder or s3://")
    # What a run trains: GRPO from the starting model, a supervised warm start only, or the
    # warm start then GRPO from it (so that GRPO's groups have reward variance to learn from).
    recipe: Literal["grpo", "sft", "sft+grpo"] = Field(
        "sft+grpo", description="sft+grpo (the supervised warm start, then GRPO from it); "
                                "sft (the warm start only); grpo (GRPO alone)")
    seed: int = Field(
        0,
        description="seed of the trainer and of the evaluation's bootstrap")
    bf16: bool = Field(
        False,
        description="compute in bf16 where the hardware runs it natively (a GPU, a CPU with "
        "AVX-512-BF16 or AMX); fp32 elsewhere")
    gradient_checkpointing: bool = Field(
        False,
        description="recompute activations in backward: less memory, slower steps")
    use_champion: bool = Field(
        True,
        description="the composer writes with the champion recommender once one is trained")
    launcher: Literal["local", "kubernetes"] = Field(
        "local",
        description="where the trainer runs: a local subprocess or a Kubernetes pod")
    examples: ExamplesConfig = Field(
        default_factory=ExamplesConfig,
        description="the train/validation examples and what their prompts show")
    sft: SftConfig = Field(default_factory=SftConfig,
                           description="the supervised warm start (TRL SFTTrainer)")
    grpo: GrpoConfig = Field(default_factory=GrpoConfig,
                             description="GRPO (TRL GRPOTrainer), under TRL's option names")
    gate: GateConfig = Field(default_factory=GateConfig,
                             description="the evaluation and the promotion gate")
    pod: PodConfig = Field(
        default_factory=PodConfig,
        description="the trainer pod of launcher = kubernetes")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """A flat key of the old layout (``max_steps``) is moved to its sub-section
        (``[align.grpo] max_steps``) with a warning that names the new place."""
        if not isinstance(data, dict) or not set(data) & set(ALIGN_MOVED):
            return data
        data = dict(data)
        for old in sorted(set(data) & set(ALIGN_MOVED)):
            sub, new = ALIGN_MOVED[old]
            section = data.get(sub) or {}
            section = dict(section) if isinstance(section, dict) else section.model_dump()
            _check(new not in section, f"align.{old}", data[old],
                   f"is set twice: also as [align.{sub}] {new}; keep only the latter")
            section[new] = data.pop(old)
            data[sub] = section
            log.warning("setting [align] %s is deprecated: it is now [align.%s] %s", old, sub,
                        new)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> AlignConfig:
        _check(self.examples.candidate_labels == "letters" or self.gate.choice == "generated",
               "align.gate.choice", self.gate.choice,
               "scored needs [align.examples] candidate_labels = 'letters' (an id spans "
               "several tokens)")
        return self


class ReplayConfig(Section):
    """The offline replay of ``ds``'s requests and its report (``mspa_tasks.replay``)."""

    section: ClassVar[str] = "replay"

    watched: Literal["clicked", "gifted"] = Field(
        "clicked",
        description="the impression flag that means watched, for HR@K")
    hr_ks: Ints = Field((10, 50, 100, 500, 1000), description="the HR@K curve")
    hr_k: int = Field(1000, description="the headline HR@K, one of hr_ks")
    topk_ks: Ints = Field((5, 10), description="Recall@K / NDCG@K on test users")
    score_batch: int = Field(512, ge=1, description="queries per matrix product")
    ann_sample: int = Field(50, ge=0, description="requests replayed through the Milvus alias")
    acc_max_users: int = Field(32, ge=0, description="test users the champion LLM answers "
                                                     "(0 = all)")
    a2a_triples: int = Field(2000, ge=0, description="author triples from the world's latents")
    als_factors: int = Field(
        32, ge=1,
        description="latent factors of the ALS baseline")
    als_iterations: int = Field(
        15, ge=1,
        description="alternating passes of the ALS baseline")
    als_regularization: float = Field(
        0.05, ge=0,
        description="L2 weight of the ALS baseline")
    seed: int = Field(
        0,
        description="seed of the replay's samples and bootstrap")
    bootstrap: int = Field(1000, ge=0, description="bootstrap replicates over users for the "
                                                   "95% intervals; 0 = no intervals")
    cold_days: int = Field(3, ge=1, description="an author whose first interaction in the "
                                                "window, or first live, is this recent is cold")
    trend_days: int = Field(14, ge=1, description="days shown in the report's trend plot")
    report_prefix: str = Field(
        "reports/replay",
        description="where reports are written in the artifact store")

    @field_validator("hr_ks", "topk_ks")
    @classmethod
    def _sizes(cls, value: tuple[int, ...], info) -> tuple[int, ...]:
        _check(bool(value) and min(value) >= 1, f"replay.{info.field_name}", value,
               "needs sizes >= 1")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _headline_on_curve(self) -> ReplayConfig:
        _check(self.hr_k in self.hr_ks, "replay.hr_k", self.hr_k,
               f"must be one of hr_ks {list(self.hr_ks)}")
        return self


class AlertsConfig(Section):
    """Failure and deadline notifications (``mspa_airflow.alerts``); off by default."""

    section: ClassVar[str] = "alerts"

    enabled: bool = Field(
        False,
        description="post alerts to the HTTP connection (off: alerts are only logged)")
    http_conn_id: str = Field(
        "mspa_alerts",
        description="the Airflow HTTP connection that holds the webhook and its auth")
    endpoint: str = Field(
        "",
        description="a path under the connection's host, if any")
    # A DeadlineAlert on mspa_daily: runs not finished this long after being queued alert.
    # 0 = none (the embedded default: `airflow dags test` on Airflow 3.3.2 crashes on one).
    deadline_hours: float = Field(0.0, ge=0, le=48, description="0 = no deadline")


class WorldConfig(Section):
    section: ClassVar[str] = "world"

    preset: str = Field(
        "demo",
        description="the demo world's preset (tiny, demo, default, scale)")
    end_ds: str = Field(
        "2026-11-20",
        description="the demo world's last day")


class _EnvironmentToml(PydanticBaseSettingsSource):
    """``conf/<env>.toml`` with the ``MSPA_CONFIG`` file over it, key by key, and ``{home}``
    expanded in the path-like values."""

    PATHS = ("warehouse_url", "artifacts_uri", "models_dir")

    def __init__(self, settings_cls: type[BaseSettings], env: str, home: Path) -> None:
        super().__init__(settings_cls)
        self.env, self.home = env, home

    def get_field_value(self, field, field_name):  # unused: __call__ reads whole files
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        raw = tomllib.loads((CONF_DIR / f"{self.env}.toml").read_text())
        override = os.environ.get("MSPA_CONFIG")
        if override:
            raw = merge_overrides(raw, Path(override))
            # The environment is picked by MSPA_ENV alone: an overlay that names another one
            # would give the other environment's values under this one's defaults.
            _check(raw.get("env", self.env) == self.env, "env", raw.get("env"),
                   f"must stay {self.env!r}, the environment MSPA_ENV picks (an overlay such "
                   f"as MSPA_CONFIG={override!r} cannot switch it); drop env from the overlay "
                   "and set MSPA_ENV instead")

        def expand(value: object, url: bool) -> object:
            if not isinstance(value, str):
                return value
            # In a URL a '#', '?' or '%' in MSPA_HOME would end or escape the path.
            home = quote(str(self.home), safe=URI_SAFE) if url else str(self.home)
            return value.replace("{home}", home)

        for key in self.PATHS:
            if key in raw:
                raw[key] = expand(raw[key], url=key != "models_dir")
        if isinstance(raw.get("vectors"), dict) and "milvus_uri" in raw["vectors"]:
            milvus_uri = raw["vectors"]["milvus_uri"]
            raw["vectors"] = {**raw["vectors"], "milvus_uri": expand(milvus_uri, url="://" in
                                                                     str(milvus_uri))}
        if "models_dir" in raw:
            raw["models_dir"] = Path(str(raw["models_dir"]))
        return raw


class Settings(BaseSettings):
    """Every setting of one environment. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", strict=True)

    env: Literal["local", "prod"] = Field(
        description="the environment: local (embedded default) or prod; set by MSPA_ENV")
    home: Path = Field(
        description="the local data folder (MSPA_HOME)")
    warehouse_conn_id: str = Field(
        "",
        description="the Airflow connection of the warehouse; used when it exists")
    warehouse_url: str = Field(
        "",
        description="SQLAlchemy URL of the warehouse when the connection does not exist (no "
        "credentials)")
    artifacts_uri: str = Field(pattern=r"^(file|s3)://", description="start it with file:// or s3://")
    artifacts_conn_id: str = Field(
        "",
        description="the Airflow AWS connection for s3:// artifacts")
    models_dir: Path = Field(
        description="the models cache (converted packaged models, downloaded registry models)")
    ingest: IngestConfig = Field(
        default_factory=IngestConfig,
        description="the window, the filters and quarantine")
    quality: QualityConfig = Field(
        default_factory=QualityConfig,
        description="the data-quality gate")
    compose: ComposeConfig = Field(
        default_factory=ComposeConfig,
        description="the composer")
    vectors: VectorsConfig = Field(
        default_factory=VectorsConfig,
        description="the text encoder and the Milvus refresh")
    align: AlignConfig = Field(
        default_factory=AlignConfig,
        description="the recommender's training and evaluation")
    replay: ReplayConfig = Field(
        default_factory=ReplayConfig,
        description="the offline replay")
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig,
        description="alerts to a webhook")
    world: WorldConfig = Field(
        default_factory=WorldConfig,
        description="the demo world")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _config_error(type(self), "", exc) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # Only the arguments of load_settings and the TOML files: no other environment
        # variable changes a setting behind the operator's back.
        kwargs = init_settings.init_kwargs
        if "_toml" not in kwargs:
            return (init_settings,)
        env, home = kwargs.pop("_toml")
        return (init_settings, _EnvironmentToml(settings_cls, env, home))

    @field_validator("ingest", "quality", "compose", "vectors", "align", "replay", "alerts",
                     "world", mode="before")
    @classmethod
    def _section(cls, value: Any, info) -> Any:
        # Build the section through its own class so that its errors name the section.
        if isinstance(value, dict):
            return cls.model_fields[info.field_name].annotation(**value)
        return value

    @model_validator(mode="after")
    def _where_data_lives(self) -> Settings:
        _check(bool(self.warehouse_url or self.warehouse_conn_id), "warehouse_url",
               self.warehouse_url, "set warehouse_url or warehouse_conn_id")
        _check("@" not in self.warehouse_url, "warehouse_url", "<redacted>",
               "must carry no credentials; put them in the Airflow connection "
               f"'{self.warehouse_conn_id}'")
        if self.artifacts_uri.startswith("file:"):
            try:
                local_root(self.artifacts_uri)
            except StoreURIError as exc:
                raise ConfigError(f"setting artifacts_uri: {exc}") from None
        _check(not self.models_dir.exists() or self.models_dir.is_dir(), "models_dir",
               str(self.models_dir), "must be a folder (the models cache), not a file")
        return self

    def fingerprint(self) -> str:
        """A stable hash of every setting, recorded in manifests as the config version."""
        payload = json.dumps(self.model_dump(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def replaced(self, **sections: dict[str, Any] | Any) -> Settings:
        """A validated copy: a section given as a dict has those values replaced
        (``settings.replaced(vectors={"milvus_uri": path})``), anything else is set."""
        return type(self)(**_with_changes(dict(self), sections))

    def with_ingest(self, **changes: object) -> Settings:
        """A copy with some ingest knobs replaced (e.g. from a DAG run's Params)."""
        return self.replaced(ingest=changes)

    def with_compose(self, **changes: object) -> Settings:
        return self.replaced(compose=changes)

    def with_align(self, **changes: object) -> Settings:
        return self.replaced(align=changes)


def param_schema(section: type[Section], name: str, *, optional: bool = False) -> dict:
    """The JSON schema of one setting, for a DAG Param: type, bounds and description come
    from the model, so a Param can never allow what the config refuses (or the reverse).

    >>> param_schema(IngestConfig, "window_days")
    {'type': 'integer', 'minimum': 1, 'maximum': 365, 'description': 'Days of tipping history ending at ds.'}
    >>> param_schema(GrpoConfig, "beta", optional=True)["type"]
    ['number', 'null']
    >>> param_schema(AlignConfig, "recipe", optional=True)["enum"]
    ['grpo', 'sft', 'sft+grpo', None]
    """
    prop = section.model_json_schema()["properties"][name]
    schema: dict[str, Any] = {"type": prop["type"]}
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum"):
        if key in prop:
            schema[key] = prop[key]
    if optional:
        schema["type"] = [prop["type"], "null"]
        if "enum" in schema:  # an enum must list null itself, or an empty Param is refused
            schema["enum"] = [*schema["enum"], None]
    description = section.model_fields[name].description or name.replace("_", " ")
    schema["description"] = description[0].upper() + description[1:] + "."
    return schema


def explain_settings(settings: Settings, section: str | None = None) -> str:
    """The settings in effect as TOML, every value with its description as a comment: what
    ``mspa config --explain [SECTION]`` prints. ``section`` is a table's path (``align``,
    ``align.grpo``); an unknown one raises KeyError naming the known ones.

    >>> s = load_settings("local", home="/tmp/mspa-explain")
    >>> print(explain_settings(s, "align.sft").splitlines()[1])
    max_steps = 16  # supervised steps of the warm start
    """
    tables: list[tuple[str, BaseModel]] = []

    def walk(path: str, model: BaseModel) -> None:
        tables.append((path, model))
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(f"{path}.{name}".lstrip("."), value)

    walk("", settings)
    known = [path for path, _ in tables if path]
    if section is not None and section not in known:
        raise KeyError(f"no section [{section}]; known: {', '.join(known)}")
    lines: list[str] = []
    for path, model in tables:
        if section is not None and path != section and not path.startswith(f"{section}."):
            continue
        values = [(name, info) for name, info in type(model).model_fields.items()
                  if not isinstance(getattr(model, name), BaseModel)]
        if not values:
            continue
        lines.extend([""] * bool(lines) + [f"[{path}]"] * bool(path))
        for name, info in values:
            value = model.model_dump(mode="json", include={name})[name]
            line = f"{name} = {_toml(value)}" if value is not None else f"# {name} unset"
            lines.append(f"{line}  # {info.description}" if info.description else line)
    return "\n".join(lines)


def _toml(value: Any) -> str:
    """A JSON-like value as TOML (inline tables for dicts)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def default_home() -> Path:
    return Path(os.environ.get("MSPA_HOME") or REPO_ROOT / "var").resolve()


def _checked_home(home: Path) -> Path:
    if home.exists() and not home.is_dir():
        raise ConfigError(f"MSPA_HOME={str(home)!r} is a file; it must be a folder (the local "
                          "data: warehouse, artifacts, models): point it at a folder")
    return home


def merge_overrides(raw: dict, path: Path) -> dict:
    """``raw`` with the values of the TOML file ``path`` put over it (tables merged key by
    key); unknown keys are refused later, like the environment file's own."""
    try:
        extra = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"MSPA_CONFIG={str(path)!r} cannot be read as TOML: {exc}") from exc
    return _merged(raw, extra)


def _merged(base: dict, extra: dict) -> dict:
    """``extra`` over ``base``, tables merged key by key at every depth
    (``[align.grpo] max_steps`` replaces that key only, not the whole ``[align]``)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
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
    home_path = _checked_home(Path(home).resolve() if home else default_home())
    return Settings(home=home_path, _toml=(env, home_path))
