"""The trainer entry point: GRPO on the alignment examples, then Acc@m of new vs champion.

    python -m mspa_tasks.align.train --config RUN.json [--set grpo.max_steps=2 --set grpo.beta=0.0]

The same command runs as a local subprocess (embedded default, CPU) and in the trainer pod
(production: ``accelerate launch --config_file docker/accelerate_zero3.yaml -m
mspa_tasks.align.train ...``). ``--config`` is a JSON or TOML file, a ``file://`` or an
``s3://`` URI (the run file ``mspa_retrain`` writes); ``--set key=value`` overrides a run
field or an ``[align]`` knob by its path (``grpo.max_steps``, ``examples.max_eval_users``,
``seed``; values parsed as JSON, else taken as strings).

Steps: read ``align_examples/ds=<ds>`` (train split for training, validation split for
Acc@m); resolve the starting model and the champion (``packaged:``, ``artifact:``, a folder or
a hub id); train by ``align.recipe``: ``grpo`` with TRL's ``GRPOTrainer`` (rewards from
:mod:`mspa_tasks.align.rewards`, weights λ1..λ3 from config, KL ``beta``), ``sft`` a supervised
warm start with TRL's ``SFTTrainer`` on each train example's ``target`` (the exact three-line
answer, loss on the answer only), ``sft+grpo`` the warm start then GRPO from it; save the
model; evaluate the new model and the champion on
the same validation examples; write under ``models/recommender/<version>/``: ``model/``
(weights and tokenizer, with its ``_SUCCESS.json``), ``metrics.json`` (the recipe; the SFT
stage's loss per step; every GRPO step: loss, KL, reward means per function and the share of
groups with zero reward variance, ``frac_reward_zero_std``, the stage's health signal: such a
group has no advantage and teaches nothing; runtime, tokens/s, peak memory, how much the
weights moved) and ``eval.json`` (both models' report, every figure with its 95% bootstrap
interval over validation users and the paired difference new - champion), written last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mspa_tasks.align.examples import read_examples
from mspa_tasks.align.rewards import reward_functions
from mspa_tasks.artifacts import open_store
from mspa_tasks.config import ALIGN_MOVED, AlignConfig, Section
from mspa_tasks.llm.ranking import accuracy_intervals, evaluate_model
from mspa_tasks.model_store import model_prefix, resolve_model, upload_folder

log = logging.getLogger("mspa_tasks.align.train")

EVAL = "eval.json"
METRICS = "metrics.json"


@dataclass(frozen=True)
class RunConfig:
    """One training run: what to train from, on which data, where results go."""

    ds: str
    version: str
    artifacts_uri: str
    model: str                      # starting point (usually the champion)
    champion: str                   # evaluated in the same run, on the same examples
    champion_version: str
    models_dir: str                 # local cache of resolved models
    align: AlignConfig = field(default_factory=AlignConfig)

    @property
    def output(self) -> str:

        return model_prefix(self.version)

    def as_dict(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
                "align": self.align.model_dump(mode="json")}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_run_config(source: str, overrides: list[str] | None = None) -> RunConfig:
    """The run config from a path or URI, with ``key=value`` overrides applied."""
    if source.startswith(("s3://", "file://")):

        root, _, name = source.rpartition("/")
        text = open_store(root).get_text(name)
    else:
        text = Path(source).read_text()
    raw = tomllib.loads(text) if source.endswith(".toml") else json.loads(text)
    align = dict(raw.pop("align", {}))
    run_fields = {f.name for f in dataclasses.fields(RunConfig)} - {"align"}
    knobs = align_paths()
    for item in overrides or []:
        key, sep, value = item.partition("=")
        key = key.strip().removeprefix("align.")
        if key in ALIGN_MOVED:  # the flat name of the old layout: max_steps = grpo.max_steps
            key = ".".join(ALIGN_MOVED[key])
        if not sep or key not in run_fields | knobs:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE with KEY a run field "
                             f"{sorted(run_fields)} or an [align] path {sorted(knobs)}")
        if key in run_fields:
            raw[key] = _value(value)
            continue
        *parents, leaf = key.split(".")
        node = align
        for part in parents:
            child = dict(node.get(part) or {})
            node[part] = child
            node = child
        node[leaf] = _value(value)
    missing = run_fields - set(raw)
    if missing:
        raise SystemExit(f"run config {source} lacks {sorted(missing)}")
    return RunConfig(**{k: raw[k] for k in run_fields}, align=AlignConfig(**align))


def align_paths() -> set[str]:
    """Every ``[align]`` knob by its path: ``recipe``, ``grpo.max_steps``, ``pod.gpus``."""
    paths = set()
    for name, info in AlignConfig.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, Section):
            paths |= {f"{name}.{key}" for key in sub.model_fields}
        else:
            paths.add(name)
    return paths


def grpo_args(cfg: AlignConfig, output_dir: str) -> Any:
    """TRL's ``GRPOConfig`` for ``cfg`` (CPU when no GPU is present)."""
    import torch
    from trl import GRPOConfig

    # [align.grpo] uses GRPOConfig's own names: each knob is passed as it is.
    knobs = cfg.grpo.model_dump(exclude={"rewards"})
    return GRPOConfig(
        output_dir=output_dir, **{**knobs, "reward_weights": list(knobs["reward_weights"])},
        seed=cfg.seed, bf16=precision(cfg).bf16, use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=cfg.gradient_checkpointing,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True)


def sft_args(cfg: AlignConfig, output_dir: str) -> Any:
    """TRL's ``SFTConfig`` for the warm start: loss on the answer only (prompt-completion
    data), no truncation (an answer is never cut), CPU when no GPU is present."""
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir, max_steps=cfg.sft.max_steps, learning_rate=cfg.sft.learning_rate,
        per_device_train_batch_size=cfg.sft.batch_size, completion_only_loss=True,
        max_length=None, seed=cfg.seed, bf16=precision(cfg).bf16, use_cpu=not torch.cuda.is_available(),
        gradient_checkpointing=cfg.gradient_checkpointing, logging_steps=1,
        save_strategy="no", report_to="none", disable_tqdm=True)


@dataclass(frozen=True)
class Precision:
    """Whether this run computes in bf16, and why (logged, and kept in ``metrics.json``)."""

    bf16: bool
    reason: str


def choose_precision(requested: bool, cuda: bool, cpu_native_bf16: bool) -> Precision:
    """bf16 where it is asked for and the hardware runs it natively: any GPU we deploy on, a
    CPU with AVX-512-BF16 or AMX. On a CPU without them PyTorch emulates bf16 matmuls, and
    autocast makes a step slower, not faster (an LM head's forward and backward: 15x slower
    on an AVX2 CPU, 3.8x on an AVX-512 CPU without BF16, measured), so the run stays fp32.

    >>> choose_precision(True, cuda=False, cpu_native_bf16=False).bf16
    False
    >>> choose_precision(True, cuda=False, cpu_native_bf16=True).bf16
    True
    """
    if not requested:
        return Precision(False, "align.bf16 is off: fp32")
    if cuda:
        return Precision(True, "align.bf16 on a GPU: bf16 weights")
    if cpu_native_bf16:
        return Precision(True, "align.bf16 on a CPU with native bf16 (AVX-512-BF16 or AMX): "
                               "fp32 weights, bf16 autocast")
    return Precision(False, "align.bf16 asked, but this CPU has no native bf16 (no "
                            "AVX-512-BF16, no AMX) and would emulate it, several times "
                            "slower: fp32")


def cpu_native_bf16() -> bool:
    """Whether this CPU runs bf16 matmuls natively (AVX-512-BF16 or AMX tiles)."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def precision(cfg: AlignConfig) -> Precision:
    """The precision of this run on this machine (see :func:`choose_precision`)."""
    import torch

    cuda = torch.cuda.is_available()
    return choose_precision(cfg.bf16, cuda, not cuda and cpu_native_bf16())


def weights_dtype(cfg: AlignConfig) -> Any:
    """The dtype the model is loaded in. In bf16 on a GPU: bf16 weights (DeepSpeed keeps
    fp32 master copies). On a CPU: always fp32 weights (bf16, where chosen, is autocast):
    a bf16 weight would round away most updates at a 1e-5 learning rate."""
    import torch

    return torch.bfloat16 if precision(cfg).bf16 and torch.cuda.is_available() \
        else torch.float32


def _weights_moved(before: list | None, model: Any) -> dict[str, Any] | None:
    import torch

    if before is None:
        return None
    after = list(model.parameters())
    return {"tensors_changed": sum(not torch.equal(a.detach().to(b.dtype), b)
                                   for a, b in zip(after, before, strict=True)),
            "tensors": len(before),
            "l2_change": float(sum((a.detach().float() - b.float()).pow(2).sum()
                                   for a, b in zip(after, before, strict=True)) ** 0.5)}


def _snapshot(model: Any) -> list | None:
    # Sharded (ZeRO-3) parameters cannot be compared in one process; single-process runs
    # record how far the weights moved, which is what the CPU tests check.
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    return [p.detach().clone() for p in model.parameters()]


def warm_start(run: RunConfig, rows: list[dict[str, Any]], model_path: str,
               out_dir: Path) -> dict[str, Any]:
    """The SFT warm start on ``rows`` (their ``target``); saves the model to ``out_dir``.
    Returns its metrics (loss per step, runtime, how far the weights moved)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    cfg = run.align
    dataset = Dataset.from_list([
        {"prompt": r["prompt"], "completion": [{"role": "assistant", "content": r["target"]}]}
        for r in rows if r.get("target")])
    model = AutoModelForCausalLM.from_pretrained(
        model_path, dtype=weights_dtype(cfg))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    before = _snapshot(model)
    trainer = SFTTrainer(model=model, args=sft_args(cfg, str(out_dir / "trainer")),
                         train_dataset=dataset, processing_class=tokenizer)
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    trainer.save_model(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    steps = [{k: v for k, v in h.items() if k in ("step", "loss", "learning_rate",
                                                 "mean_token_accuracy", "num_tokens")}
             for h in trainer.state.log_history if "loss" in h]
    for step in steps:
        log.info("sft step %s: loss %.4f token accuracy %s", step.get("step"), step["loss"],
                 step.get("mean_token_accuracy"))
    return {"steps": steps, "examples": len(dataset), "train_runtime_s": round(seconds, 2),
            "train_metrics": result.metrics, "weights": _weights_moved(before, trainer.model),
            "is_main_process": trainer.accelerator.is_main_process}


def train(run: RunConfig, rows: list[dict[str, Any]], model_path: str,
          out_dir: Path) -> dict[str, Any]:
    """Train ``rows`` by the run's recipe; the trained model is saved to ``out_dir/model``.
    Returns the metrics."""
    chosen = precision(run.align)
    log.info("precision: %s", chosen.reason)
    return {**_train(run, rows, model_path, out_dir), "precision": dataclasses.asdict(chosen)}


def _train(run: RunConfig, rows: list[dict[str, Any]], model_path: str,
           out_dir: Path) -> dict[str, Any]:
    recipe = run.align.recipe
    if recipe == "grpo":
        return {"recipe": recipe, **grpo(run, rows, model_path, out_dir)}
    sft = warm_start(run, rows, model_path, out_dir / ("model" if recipe == "sft" else "sft"))
    if recipe == "sft":
        import torch

        return {"recipe": recipe, "sft": sft, "steps": [], "weights": sft["weights"],
                "device": "cuda" if torch.cuda.is_available() else "cpu",
                "examples": sft["examples"], "is_main_process": sft["is_main_process"],
                "world_size": int(os.environ.get("WORLD_SIZE", "1"))}
    return {"recipe": recipe, "sft": sft, **grpo(run, rows, str(out_dir / "sft"), out_dir)}


def grpo(run: RunConfig, rows: list[dict[str, Any]], model_path: str,
         out_dir: Path) -> dict[str, Any]:
    """GRPO on ``rows``; the trained model is saved to ``out_dir/model``. Returns the
    metrics."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer


    cfg = run.align
    if cfg.grpo.use_vllm and not torch.cuda.is_available():
        raise SystemExit("align.grpo.use_vllm=true needs a GPU and vLLM (the trainer image); "
                         "this machine has no GPU: set align.grpo.use_vllm=false")
    columns = ("prompt", "candidate_ids", "candidate_labels", "ground_truth",
               "candidate_vectors")
    dataset = Dataset.from_list([{k: r[k] for k in columns} for r in rows])
    dtype = weights_dtype(cfg)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    before = _snapshot(model)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_functions(cfg.grpo.rewards),
                          args=grpo_args(cfg, str(out_dir / "trainer")),
                          train_dataset=dataset, processing_class=tokenizer)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    steps = [h for h in trainer.state.log_history if "reward" in h]
    moved = _weights_moved(before, trainer.model)
    trainer.save_model(str(out_dir / "model"))
    tokenizer.save_pretrained(str(out_dir / "model"))
    tokens = trainer.state.num_input_tokens_seen or (steps[-1].get("num_tokens") if steps else 0)
    metrics = {
        "steps": steps, "train_runtime_s": round(seconds, 2),
        "train_metrics": result.metrics, "num_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1) if tokens else None,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "peak_memory_gb": (round(torch.cuda.max_memory_allocated() / 2**30, 2)
                           if torch.cuda.is_available() else None),
        "weights": moved, "examples": len(rows),
        # per step, the share of groups whose completions all got the same reward
        "zero_std_share": [s.get("frac_reward_zero_std") for s in steps],
        "world_size": int(os.environ.get(
            "WORLD_SIZE", "1")), "is_main_process": trainer.accelerator.is_main_process,
    }
    for step in steps:
        log.info("step %s: reward %.4f %s kl %s, groups with zero reward variance %s",
                 step.get("step"), step["reward"],
                 {k.split("/")[1]: round(v, 4) for k, v in step.items()
                  if k.startswith("rewards/") and k.endswith("/mean")}, step.get("kl"),
                 step.get("frac_reward_zero_std"))
    return metrics


def run_training(run: RunConfig) -> dict[str, Any]:
    """The whole run (see module doc); returns ``eval.json``'s content."""

    store = open_store(run.artifacts_uri)
    cfg = run.align
    train_rows = read_examples(store, run.ds, "train", cfg.examples.train_m)
    val_rows = read_examples(store, run.ds, "val", cfg.examples.eval_m)
    if not train_rows or not val_rows:
        raise SystemExit(f"align_examples/ds={run.ds} has {len(train_rows)} train and "
                         f"{len(val_rows)} validation examples; both are needed")
    models_dir = Path(run.models_dir)
    start_path = resolve_model(run.model, store, models_dir)
    champion_path = resolve_model(run.champion, store, models_dir)
    log.info("run %s on ds=%s: %d train / %d validation examples; from %s (champion %s)",
             run.version, run.ds, len(train_rows), len(val_rows), run.model,
             run.champion_version)
    with tempfile.TemporaryDirectory(prefix="mspa-train-") as tmp:
        out = Path(tmp)
        metrics = train(run, train_rows, start_path, out)
        if not metrics["is_main_process"]:
            return {}
        model_uri = upload_folder(store, out / "model", f"{run.output}/model")
        store.put_text(f"{run.output}/{METRICS}", json.dumps(metrics, indent=2, default=str))
        new, new_answers = evaluate_model(str(out / "model"), val_rows, cfg.gate.batch_size,
                                          cfg.gate.max_new_tokens, f"new {run.version}",
                                          cfg.gate.choice)
    champ, champ_answers = evaluate_model(champion_path, val_rows, cfg.gate.batch_size,
                                          cfg.gate.max_new_tokens,
                                          f"champion {run.champion_version}", cfg.gate.choice)
    # Every figure with its 95% interval over validation users, and new - champion paired.
    intervals = accuracy_intervals({"new": new_answers, "champion": champ_answers}, val_rows,
                                   "new", n_boot=1000, seed=cfg.seed)
    report = {"version": run.version, "ds": run.ds, "model_uri": model_uri,
              "intervals": intervals, "choice": cfg.gate.choice, "recipe": metrics.get("recipe"),
              "precision": metrics.get("precision"),
              # GRPO's health per step: the share of groups whose completions all scored alike
              "zero_std_share": metrics.get("zero_std_share"),
              "model_ref": f"artifact:{run.output}/model", "base_version": run.champion_version,
              "new": new, "champion": champ, "champion_version": run.champion_version,
              "validation_examples": len(val_rows), "config": run.as_dict(),
              "samples": [{"user_id": r["user_id"], "m": r["m"], "ground_truth": r["ground_truth"],
                           "new": a, "champion": b}
                          for r, a, b in list(zip(val_rows, new_answers.texts,
                                                  champ_answers.texts, strict=True))[:5]]}
    store.put_text(f"{run.output}/{EVAL}", json.dumps(report, indent=2, default=str))
    log.info("Acc new %s vs champion %s", {k: v for k, v in new.items() if k.startswith("acc")},
             {k: v for k, v in champ.items() if k.startswith("acc")})
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mspa_tasks.align.train",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="run file: path, file:// or s3:// URI")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a run field or an [align] knob")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    run = load_run_config(args.config, args.overrides)
    report = run_training(run)
    if report:
        print(json.dumps({"version": report["version"], "new": report["new"],
                          "champion": report["champion"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
