"""The model registry and its gate, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from mspa_tasks import registry
from mspa_tasks.align.retrain import base_version, ensure_champion, register_run
from mspa_tasks.model_store import model_prefix
from mspa_tasks.run import DayRun


@pytest.mark.parametrize(("new", "champ", "tol", "promote"), [
    ({"acc@4": 0.30, "acc@10": 0.10}, {"acc@4": 0.30, "acc@10": 0.10}, 0.0, True),   # equal
    ({"acc@4": 0.29, "acc@10": 0.10}, {"acc@4": 0.30, "acc@10": 0.10}, 0.0, False),
    ({"acc@4": 0.29, "acc@10": 0.10}, {"acc@4": 0.30, "acc@10": 0.10}, 0.01, True),  # at the edge
    ({"acc@4": 0.50, "acc@10": 0.07}, {"acc@4": 0.30, "acc@10": 0.10}, 0.02, False),  # every m
    ({"acc@4": 0.35, "acc@10": 0.12}, {"acc@4": 0.30, "acc@10": 0.10}, 0.0, True),
])
def test_gate_decisions(new, champ, tol, promote):
    assert registry.decide(new, champ, tol).promote is promote


def test_gate_refuses_to_compare_different_metrics():
    with pytest.raises(ValueError, match="cannot compare"):
        registry.decide({"acc@4": 0.3}, {"acc@4": 0.3, "acc@10": 0.1}, 0.0)


def _intervals(new, champ, half=0.1):
    """The evaluation's Acc@m interval rows for ``{m: acc}`` of both models: each value
    +/- ``half``, the champion's paired difference (champion - new) +/- ``half`` too."""
    rows = []
    for m, v in new.items():
        c, d = champ[m], champ[m] - v
        base = {"metric": "acc", "segment": "all", "m": int(m.split("@")[1]), "n": 40}
        rows += [{**base, "model": "new", "value": v, "low": max(0.0, v - half),
                  "high": min(1.0, v + half), "diff": None, "diff_low": None, "diff_high": None},
                 {**base, "model": "champion", "value": c, "low": max(0.0, c - half),
                  "high": min(1.0, c + half), "diff": d, "diff_low": d - half,
                  "diff_high": d + half}]
    return rows


def _eval(store, version, champion_version, new, champ, tolerance=0.02):
    prefix = model_prefix(version)
    store.put_text(f"{prefix}/metrics.json", json.dumps(
        {"steps": [{"reward": 0.1}, {"reward": 0.4}], "train_runtime_s": 12.0,
         "weights": {"tensors_changed": 3, "tensors": 3}}))
    store.put_text(f"{prefix}/eval.json", json.dumps(
        {"version": version, "ds": "2026-11-20", "model_uri": store.uri(prefix),
         "model_ref": f"artifact:{prefix}/model", "base_version": champion_version,
         "new": new, "champion": champ, "champion_version": champion_version,
         "intervals": _intervals(new, champ),
         "validation_examples": 40, "config": {"align": {"tolerance": tolerance}}}))


def test_first_run_crowns_the_base_then_the_gate_decides(warehouse_url, store, settings):
    base = ensure_champion(warehouse_url, settings)
    assert base.version == base_version(settings) and base.status == "champion"
    assert ensure_champion(warehouse_url, settings).version == base.version  # not twice

    # The first trained champion must clear chance too: 0.30 [0.20, 0.40] at m = 4 does not,
    # however far it is above the untrained base.
    _eval(store, "r1", base.version, {"acc@4": 0.30, "acc@10": 0.25},
          {"acc@4": 0.02, "acc@10": 0.0})
    at_chance = register_run(DayRun("2026-11-20", settings, store, warehouse_url), "r1")
    assert at_chance["status"] == "rejected"
    assert ("acc@4 0.3000 [0.2000, 0.4000]: its lower bound does not clear chance 0.2500"
            in at_chance["reason"])
    assert registry.champion(warehouse_url).version == base.version  # nothing changed

    _eval(store, "r2", base.version, {"acc@4": 0.60, "acc@10": 0.35},
          {"acc@4": 0.02, "acc@10": 0.0})
    better = register_run(DayRun("2026-11-20", settings, store, warehouse_url), "r2")
    assert better["status"] == "champion", better["reason"]
    models = {m.version: m for m in registry.list_models(warehouse_url)}
    assert models["r2"].status == "champion" and models[base.version].status == "retired"
    assert models["r1"].status == "rejected"
    assert models["r2"].metrics["new"]["acc@4"] == 0.60
    assert models["r2"].metrics["champion"]["acc@10"] == 0.0  # both models' figures kept
    assert [m.version for m in registry.list_models(warehouse_url)
            if m.status == "champion"] == ["r2"]

    # r3 trained against the base while r2 was promoted: it was never compared with r2.
    _eval(store, "r3", base.version, {"acc@4": 0.9, "acc@10": 0.9},
          {"acc@4": 0.02, "acc@10": 0.0})
    stale = register_run(DayRun("2026-11-20", settings, store, warehouse_url), "r3")
    assert stale["status"] == "rejected" and "the champion is now r2" in stale["reason"]

    # A retried register task rewrites its own row, never a second one.
    register_run(DayRun("2026-11-20", settings, store, warehouse_url), "r1")
    assert [m.version for m in registry.list_models(warehouse_url)].count("r1") == 1

    # Roll back by hand: the base serves again, r2 retires, the reason is kept.
    assert registry.promote(warehouse_url, base.version, "bad texts").version == base.version
    models = {m.version: m for m in registry.list_models(warehouse_url)}
    assert models["r2"].status == "retired" and "bad texts" in models[base.version].reason
    with pytest.raises(KeyError, match="no model version 'nope'"):
        registry.promote(warehouse_url, "nope", "typo")


@pytest.mark.parametrize(("new", "reason"), [
    # above chance, but the paired interval says it is worse than the champion's 0.60
    ({"acc@4": 0.45, "acc@10": 0.35},
     "acc@4 0.4500 [0.3500, 0.5500]: significantly below the champion's 0.6000 "
     "(champion - new +0.1500 [+0.0500, +0.2500])"),
    # a chance-level challenger against a trained champion
    ({"acc@4": 0.62, "acc@10": 0.15},
     "acc@10 0.1500 [0.0500, 0.2500]: its lower bound does not clear chance 0.1000"),
    # not significantly below, but further below than the tolerance
    ({"acc@4": 0.55, "acc@10": 0.35},
     "acc@4 0.5500 [0.4500, 0.6500] < champion 0.6000 - tolerance 0.0200"),
])
def test_the_gate_refuses_a_challenger_below_chance_or_below_the_champion(
        warehouse_url, store, settings, new, reason):
    base = ensure_champion(warehouse_url, settings)
    _eval(store, "r1", base.version, {"acc@4": 0.60, "acc@10": 0.35},
          {"acc@4": 0.02, "acc@10": 0.0})
    assert register_run(DayRun("2026-11-20", settings, store, warehouse_url),
                        "r1")["status"] == "champion"
    _eval(store, "r2", "r1", new, {"acc@4": 0.60, "acc@10": 0.35})
    decision = register_run(DayRun("2026-11-20", settings, store, warehouse_url), "r2")
    assert decision["status"] == "rejected" and reason in decision["reason"]
    assert registry.champion(warehouse_url).version == "r1"


def test_an_evaluation_without_intervals_is_not_judged(warehouse_url, store, settings):
    from mspa_tasks.align.retrain import RunIncomplete

    base = ensure_champion(warehouse_url, settings)
    _eval(store, "r1", base.version, {"acc@4": 0.60}, {"acc@4": 0.02})
    report = json.loads(store.get_text(f"{model_prefix('r1')}/eval.json"))
    store.put_text(f"{model_prefix('r1')}/eval.json",
                   json.dumps({k: v for k, v in report.items() if k != "intervals"}))
    with pytest.raises(RunIncomplete, match="has no Acc@m intervals"):
        register_run(DayRun("2026-11-20", settings, store, warehouse_url), "r1")
    assert "r1" not in {m.version for m in registry.list_models(warehouse_url)}


def test_a_run_without_its_results_is_not_registered(warehouse_url, store, settings):
    from mspa_tasks.align.retrain import RunIncomplete

    ensure_champion(warehouse_url, settings)
    with pytest.raises(RunIncomplete, match="eval.json is missing"):
        register_run(DayRun("2026-11-20", settings, store, warehouse_url), "r9")
    assert "r9" not in {m.version for m in registry.list_models(warehouse_url)}


def test_no_registry_means_no_champion(tmp_path):
    assert registry.champion(f"sqlite:///{tmp_path / 'empty.db'}") is None
