"""The retraining run's steps, as the DAG ``mspa_retrain`` calls them (Airflow-free).

1. :func:`prepare_run` — pick the data day, publish its alignment examples, make sure a
   champion exists (the first run registers the configured base model), and write the run
   file ``runs/recommender/<version>/run.json`` the trainer reads.
2. The trainer entry point (:mod:`mspa_tasks.align.train`) — a local subprocess
   (:func:`launch_local`) or a Kubernetes pod; it writes the model, ``metrics.json`` and
   ``eval.json`` under ``models/recommender/<version>/``.
3. :func:`register_run` — read both models' Acc@m from ``eval.json``, apply the gate, and
   record the version, its status and the reason in ``model_registry``.

:func:`mspa_tasks.champion.serving_settings` gives the composer the champion's weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from typing import Any

from mspa_tasks import registry
from mspa_tasks.align.examples import build_examples
from mspa_tasks.align.train import EVAL, METRICS, RunConfig
from mspa_tasks.artifacts import ArtifactNotFound, ArtifactStore
from mspa_tasks.champion import base_version
from mspa_tasks.config import AlignConfig, Settings
from mspa_tasks.datasets import AUTHOR_VECTORS
from mspa_tasks.model_store import model_prefix
from mspa_tasks.run import DayRun

log = logging.getLogger(__name__)


class RunIncomplete(RuntimeError):
    """The trainer did not leave a complete result (model, metrics, eval) for the version."""


def run_version(ds: str, run_id: str) -> str:
    """A version name per (data day, DAG run): a retried task reuses it.

    >>> run_version("2026-11-20", "manual__2026-11-22T10:00:00")
    'r20261120-569c6995'
    """
    return f"r{ds.replace('-', '')}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def latest_ready_day(store: ArtifactStore, on_or_before: str | None = None) -> str:
    """The newest ``ds`` whose author vectors are published (what the examples need)."""
    days = [d for d in AUTHOR_VECTORS.days(store)
            if on_or_before is None or d <= on_or_before]
    if not days:
        raise RunIncomplete(f"no published {AUTHOR_VECTORS.name} partition"
                            + (f" on or before {on_or_before}" if on_or_before else "")
                            + "; run mspa_daily first")
    return days[-1]


def ensure_champion(warehouse_url: str, settings: Settings) -> registry.ModelVersion:
    """The champion; on the first run, the configured base model registered as such."""
    current = registry.champion(warehouse_url)
    if current is not None:
        return current
    base = registry.ModelVersion(
        version=base_version(settings), ds=None, base_version=None,
        artifact_uri=settings.align.base_model, model_ref=settings.align.base_model,
        status="champion", reason="initial champion: the configured base model, untrained",
        metrics={})
    registry.register(warehouse_url, base)
    log.info("registered the base model %s as the initial champion", base.model_ref)
    return base


def prepare_run(run: DayRun, run_id: str,
                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Steps 1 of the module doc, on the run's day. Returns ``{ds, version, config_uri,
    champion_version, examples}``; ``overrides`` replace ``[align]`` knobs for this
    training run (DAG Params), sub-sections as dicts (``{"grpo": {"max_steps": 2}}``)."""
    ds, warehouse_url, store, settings = run.ds, run.url, run.artifacts, run.settings
    if overrides:
        settings = settings.with_align(**overrides)
    registry.prepare_registry(warehouse_url)
    published = build_examples(ds, warehouse_url, store, settings)
    champ = ensure_champion(warehouse_url, settings)
    version = run_version(ds, run_id)
    config = RunConfig(ds=ds, version=version, artifacts_uri=settings.artifacts_uri,
                    model=champ.model_ref, champion=champ.model_ref,
                    champion_version=champ.version, models_dir=str(settings.models_dir),
                    align=settings.align)
    key = f"runs/recommender/{version}/run.json"
    uri = store.put_text(key, json.dumps(config.as_dict(), indent=2, default=list))
    log.info("run %s: examples %s, starting from champion %s; run file %s", version,
             published.manifest["counts"]["examples"], champ.version, uri)
    return {"ds": ds, "version": version, "config_uri": uri, "champion_version": champ.version,
            "examples": published.manifest["counts"]["examples"]}


def trainer_command(config_uri: str) -> list[str]:
    """The trainer entry point's command line (the pod runs it under ``accelerate``)."""
    return [sys.executable, "-m", "mspa_tasks.align.train", "--config", config_uri]


def launch_local(config_uri: str, timeout_s: float | None = None) -> None:
    """Run the trainer as a subprocess on this machine, streaming its output to the log."""
    command = trainer_command(config_uri)
    log.info("launching %s", " ".join(command))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line and "Loading weights" not in line and "Writing model shards" not in line:
                log.info("[trainer] %s", line)
        rc = proc.wait(timeout=timeout_s)
    if rc != 0:
        raise RunIncomplete(f"the trainer exited with {rc}; its output is above")


def _read_json(store: ArtifactStore, key: str) -> dict[str, Any]:
    try:
        return json.loads(store.get_text(key))
    except ArtifactNotFound as exc:
        raise RunIncomplete(f"{store.uri(key)} is missing: the trainer did not finish") from exc


def register_run(run: DayRun, version: str) -> dict[str, Any]:
    """Step 3 of the module doc for the training run ``version`` of the run's day. Returns
    the decision with both models' figures."""
    warehouse_url, store = run.url, run.artifacts
    prefix = model_prefix(version)
    report = _read_json(store, f"{prefix}/{EVAL}")
    metrics = _read_json(store, f"{prefix}/{METRICS}")
    # through the config model: a run file of the flat [align] layout still reads
    tolerance = AlignConfig(**report["config"]["align"]).gate.tolerance
    new = {k: v for k, v in report["new"].items() if k.startswith("acc@")}
    champ = {k: v for k, v in report["champion"].items() if k.startswith("acc@")}
    if not report.get("intervals"):
        raise RunIncomplete(f"{store.uri(f'{prefix}/{EVAL}')} has no Acc@m intervals (an "
                            "older trainer wrote it); the gate needs them: retrain")
    decision = registry.recommender_gate(report["intervals"], tolerance)
    current = registry.champion(warehouse_url)
    if current is not None and current.version != report["champion_version"]:
        # Another version was promoted while this one trained: it was not measured against it.
        decision = registry.Decision(False, f"rejected: measured against "
                                     f"{report['champion_version']}, but the champion is now "
                                     f"{current.version}; retrain from it")
    steps = metrics.get("steps", [])
    entry = {"new": report["new"], "champion": report["champion"],
             "champion_version": report["champion_version"], "tolerance": tolerance,
             "validation_examples": report["validation_examples"],
             "train": {"steps": len(steps),
                       "reward_first": steps[0]["reward"] if steps else None,
                       "reward_last": steps[-1]["reward"] if steps else None,
                       "runtime_s": metrics.get("train_runtime_s"),
                       "tokens_per_s": metrics.get("tokens_per_s"),
                       "recipe": metrics.get("recipe"),
                       "zero_std_share": metrics.get("zero_std_share"),
                       "weights": metrics.get("weights"), "device": metrics.get("device")}}
    registry.register(warehouse_url, registry.ModelVersion(
        version=version, ds=report["ds"], base_version=report["base_version"],
        artifact_uri=report["model_uri"], model_ref=report["model_ref"],
        status="champion" if decision.promote else "rejected", reason=decision.reason,
        metrics=entry))
    table = format_comparison(version, report["champion_version"], report["new"],
                              report["champion"])
    log.info("gate for %s: %s\n%s", version, decision.reason, table)
    shares = [x for x in metrics.get("zero_std_share") or [] if x is not None]
    if shares:
        # GRPO's health: a group whose completions all scored the same teaches nothing.
        log.info("GRPO groups with zero reward variance, per step: %s (mean %.2f)",
                 [round(x, 2) for x in shares], sum(shares) / len(shares))
    return {"version": version, "status": "champion" if decision.promote else "rejected",
            "reason": decision.reason, "new": new, "champion": champ,
            "champion_version": report["champion_version"]}


def format_comparison(version: str, champion_version: str, new: dict[str, Any],
                      champ: dict[str, Any]) -> str:
    """Both models' figures side by side, for the run log.

    >>> print(format_comparison("r1", "base", {"acc@4": 0.5, "n@4": 2}, {"acc@4": 0.25, "n@4": 2}))
    metric  r1      base
    acc@4   0.5000  0.2500
    n@4     2       2
    """
    keys = [k for k in new if k in champ]
    width = max(len(version), len(champion_version), 6) + 2
    key_width = max([len("metric"), *map(len, keys)]) + 2
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"{'metric':<{key_width}}{version:<{width}}{champion_version}"]
    lines += [f"{k:<{key_width}}{fmt(new[k]):<{width}}{fmt(champ[k])}" for k in keys]
    return "\n".join(line.rstrip() for line in lines)
