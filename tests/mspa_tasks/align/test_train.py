"""The trainer entry point: real GRPO steps with TRL on the packaged SmolLM2, on CPU."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from mspa_tasks.align.examples import DATASET, build_prompt, candidate_line, example_schema
from mspa_tasks.align.train import load_run_config, main
from mspa_tasks.artifacts import open_store
from mspa_tasks.model_store import IncompleteModel, download_folder, model_prefix
from mspa_tasks.publish import publish_partition

DS = "2026-11-20"
CATEGORIES = ["singing", "dancing", "gaming", "cooking"]


def _publish_examples(store, dim: int = 8) -> None:
    """Short prompts (the trainer, not the builder, is under test: see test_examples.py)."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(8):
        for m in (4, 10):
            ids = [int(a) for a in rng.choice(np.arange(100, 200), size=m, replace=False)]
            vectors = rng.normal(size=(m, dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            labels = list("ABCDEFGHIJ"[:m])
            lines = [candidate_line(label, f"{CATEGORIES[i % 4]} streamer", i, 30, None, 60)
                     for i, label in enumerate(labels)]
            history = "- singing streamer Mia in Chengdu (tipped 2x)\n- singing streamer Bo"
            pick = (3 * user) % m  # not always the first candidate
            rows.append({"user_id": user, "split": "train" if user < 6 else "val", "m": m,
                         "tip_seq": 3, "prompt": build_prompt(history, lines),
                         "candidate_ids": ids, "candidate_labels": labels,
                         "ground_truth": ids[pick], "candidate_vectors": vectors.tolist(),
                         "target": ("User Preference: singing streams; mostly from Chengdu\n"
                                    "Recommendation Reason: a singing streamer, the taste this "
                                    f"viewer tips most\nRecommended author: {labels[pick]}")})
    publish_partition(store, DATASET, DS, {"examples": pa.Table.from_pylist(
        rows, schema=example_schema(dim))}, {"counts": {}})


def _run_file(tmp_path, settings, **align) -> str:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({
        "ds": DS, "version": "t1", "artifacts_uri": f"file://{tmp_path / 'artifacts'}",
        "model": "packaged:smollm2-135m-instruct", "champion": "packaged:smollm2-135m-instruct",
        "champion_version": "base", "models_dir": str(settings.models_dir), "align": align}))
    return str(path)


@pytest.mark.parametrize(("overrides", "path", "expected"), [
    (["grpo.max_steps=3"], "align.grpo.max_steps", 3),
    (["align.grpo.beta=0.0"], "align.grpo.beta", 0.0),
    (["grpo.reward_weights=[1, 0, 0]"], "align.grpo.reward_weights", (1.0, 0.0, 0.0)),
    (["examples.max_eval_users=5"], "align.examples.max_eval_users", 5),
    (["seed=3"], "align.seed", 3),
    (["version=r7"], "version", "r7"),
    # the flat name of the layout before the sub-sections still reaches its setting
    (["max_steps=3"], "align.grpo.max_steps", 3),
    (["sft_max_steps=2"], "align.sft.max_steps", 2),
])
def test_run_config_overrides(tmp_path, settings, overrides, path, expected):
    value = load_run_config(_run_file(tmp_path, settings), overrides)
    for part in path.split("."):
        value = getattr(value, part)
    assert value == expected


def test_an_override_keeps_the_run_files_other_settings_of_its_section(tmp_path, settings):
    run = load_run_config(_run_file(tmp_path, settings, grpo={"beta": 0.5}),
                          ["grpo.max_steps=3"])
    assert (run.align.grpo.beta, run.align.grpo.max_steps) == (0.5, 3)


def test_the_chosen_grpo_options_reach_trl(tmp_path):
    """The options docs/decisions.md argues for ("GRPO options") are what GRPOConfig gets."""
    from mspa_tasks.align.train import grpo_args
    from mspa_tasks.config import AlignConfig

    args = grpo_args(AlignConfig(), str(tmp_path))
    assert (args.loss_type, args.scale_rewards, args.multi_objective_aggregation) == (
        "dapo", "batch", "sum_then_normalize")
    assert args.mask_truncated_completions is False and args.use_vllm is False
    assert args.reward_weights == [1.0, 0.5, 0.5] and args.beta == 0.04
    prod = grpo_args(AlignConfig(grpo={"use_vllm": True, "vllm_gpu_memory_utilization": 0.25,
                                       "scale_rewards": "none"}), str(tmp_path))
    assert (prod.use_vllm, prod.vllm_mode, prod.vllm_gpu_memory_utilization) == (
        True, "colocate", 0.25)
    assert prod.scale_rewards == "none"


@pytest.mark.parametrize(("requested", "cuda", "native", "bf16"), [
    (True, True, False, True),     # a GPU: bf16 weights
    (True, False, True, True),     # a CPU with AVX-512-BF16 or AMX: bf16 autocast
    (True, False, False, False),   # AVX2 or AVX-512 without BF16: emulated, slower, so fp32
    (False, True, True, False),    # not asked: never
    (False, False, True, False),
])
def test_bf16_is_chosen_only_where_the_hardware_runs_it(requested, cuda, native, bf16):
    from mspa_tasks.align.train import choose_precision

    chosen = choose_precision(requested, cuda=cuda, cpu_native_bf16=native)
    assert chosen.bf16 is bf16 and chosen.reason


@pytest.mark.parametrize("native", [True, False])
def test_the_precision_choice_follows_this_cpus_capability(monkeypatch, tmp_path, native):
    """What TRL's configs get on a CPU is the capability probe's answer, not align.bf16."""
    import torch

    from mspa_tasks.align import train
    from mspa_tasks.config import AlignConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cfg = AlignConfig(bf16=True)
    assert train.cpu_native_bf16() is native
    assert train.grpo_args(cfg, str(tmp_path)).bf16 is native
    assert train.sft_args(cfg, str(tmp_path)).bf16 is native
    assert train.weights_dtype(cfg) == torch.float32  # fp32 weights on a CPU either way


@pytest.mark.parametrize(("overrides", "message"), [
    (["max_step=3"], "expected KEY=VALUE with KEY a run field"),
    (["grpo.max_step=3"], "expected KEY=VALUE with KEY a run field"),
    (["grpo.num_generations=1"], "align.grpo.num_generations=1 is invalid"),
])
def test_bad_overrides_are_refused_with_the_rule(tmp_path, settings, overrides, message):
    from mspa_tasks.config import ConfigError

    with pytest.raises((SystemExit, ConfigError), match=message):
        load_run_config(_run_file(tmp_path, settings), overrides)


@pytest.mark.slow
def test_a_warm_start_then_grpo_from_it_both_move_the_weights(tmp_path, settings, capsys):
    """recipe sft+grpo (the default), one trainer run: supervised steps on the examples'
    targets (loss logged), then GRPO from the warm-started model with every reward and the KL
    logged per step; each stage changes the weights it started from, every GRPO step records
    the share of groups with zero reward variance, and both models are evaluated on the same
    validation users, with intervals."""
    import torch
    from transformers import AutoModelForCausalLM

    from mspa_tasks.model_store import resolve_model

    store = open_store(f"file://{tmp_path / 'artifacts'}")
    _publish_examples(store)
    # Room for the whole three-line answer (a cut answer earns nothing, so every group would
    # have zero reward variance and GRPO nothing to learn from).
    config = _run_file(tmp_path, settings, recipe="sft+grpo", bf16=True,
                       sft={"max_steps": 4, "batch_size": 4, "learning_rate": 1e-4},
                       grpo={"max_steps": 2, "num_generations": 4,
                             "per_device_train_batch_size": 4, "max_completion_length": 72},
                       gate={"max_new_tokens": 48, "batch_size": 4})
    assert main(["--config", config]) == 0
    metrics = json.loads(store.get_text(f"{model_prefix('t1')}/metrics.json"))
    assert metrics["recipe"] == "sft+grpo"
    from mspa_tasks.align.train import cpu_native_bf16

    assert metrics["precision"]["bf16"] is cpu_native_bf16()  # bf16 asked: the CPU decides
    sft = metrics["sft"]
    assert len(sft["steps"]) == 4 and all(s["loss"] > 0 for s in sft["steps"])
    assert sft["steps"][-1]["loss"] < sft["steps"][0]["loss"]  # it learns the answers
    assert sft["examples"] == 12 and sft["weights"]["tensors_changed"] > 0
    assert len(metrics["steps"]) == 2 and metrics["weights"]["tensors_changed"] > 0
    shares = metrics["zero_std_share"]
    assert len(shares) == 2 and all(0.0 <= x <= 1.0 for x in shares)
    report = json.loads(store.get_text(f"{model_prefix('t1')}/eval.json"))
    assert report["zero_std_share"] == shares and report["recipe"] == "sft+grpo"
    assert min(shares) < 1.0  # some group had reward variance: GRPO had a gradient
    for step in metrics["steps"]:  # every reward function's mean is logged at every step
        for name in ("accuracy_reward", "format_reward", "similarity_reward"):
            assert f"rewards/{name}/mean" in step
        assert "kl" in step and "reward" in step  # beta > 0: the KL term is computed

    prefix = model_prefix("t1")
    trained = download_folder(store, f"{prefix}/model", tmp_path / "trained")
    base = resolve_model("packaged:smollm2-135m-instruct", None, settings.models_dir)
    new_params = dict(AutoModelForCausalLM.from_pretrained(trained).named_parameters())
    old_params = dict(AutoModelForCausalLM.from_pretrained(base).named_parameters())
    assert any(not torch.equal(old_params[n], new_params[n]) for n in old_params), \
        "the published model is the base model"

    for model in ("new", "champion"):
        assert {"acc@4", "acc@10", "n@4", "n@10"} <= set(report[model])
        assert report[model]["n@4"] == report[model]["n@10"] == 2
        # the choice is scored (the letters' probabilities): every example answered, and the
        # full order of the 10 candidates gives Recall@5 / NDCG@5
        assert report[model]["answered@4"] == report[model]["answered@10"] == 1.0
        assert {"recall5@10", "ndcg5@10"} <= set(report[model])
    assert report["choice"] == "scored"
    # every figure with its interval over the 2 validation users, champion paired with new
    intervals = {(r["model"], r["metric"], r["m"], r["segment"]): r for r in report["intervals"]}
    for m in (4, 10):
        new, champ = intervals[("new", "acc", m, "all")], intervals[("champion", "acc", m, "all")]
        assert new["value"] == report["new"][f"acc@{m}"] and new["users"] == 2
        assert champ["diff"] == pytest.approx(champ["value"] - new["value"])
        assert champ["low"] <= champ["value"] <= champ["high"]
    assert report["model_ref"] == f"artifact:{prefix}/model"
    assert '"acc@4"' in capsys.readouterr().out


def test_a_model_folder_without_its_marker_is_refused(tmp_path):
    store = open_store(f"file://{tmp_path / 'artifacts'}")
    store.put_bytes("models/recommender/x/model/config.json", b"{}")
    with pytest.raises(IncompleteModel, match="has no _SUCCESS.json"):
        download_folder(store, "models/recommender/x/model", tmp_path / "x")
