"""The composer's batch path on the tiny world: the day's misses exported as OpenAI batch
JSONL, answered in the batch runner's result format by the in-process backend
(``batch_launcher = "local"``; the keyword backend, so the run is quick and exact), read back
by every shard: the same texts, statuses and cache keys as the shards path; a lost or failed
answer is a failed text with its reason, never a shifted one. (The GPU pod that runs vLLM's
runner instead is tested as a pod spec in tests/plugins/test_pods.py.)"""

from __future__ import annotations

import dataclasses
import json

import pytest

from mspa_tasks import compose as run
from mspa_tasks import ingest
from mspa_tasks.artifacts import open_store
from mspa_tasks.compose import batch
from mspa_tasks.config import load_settings
from mspa_tasks.datasets import AUTHOR_TEXTS, PREFERENCE_TEXTS
from mspa_tasks.llm.keywords import KeywordBackend
from mspa_tasks.publish import MANIFEST, partition_prefix
from mspa_tasks.run import DayRun
from mspa_tasks.world.generate import PRESETS, generate_world

DS = "2026-11-20"
KEYS = ("text", "status", "model_version", "prompt_version", "input_hash")


def _home(tmp_path, name, **compose):
    settings = load_settings("local", home=tmp_path / name).with_compose(
        backend="keywords", n_shards=2, **compose)
    url = f"sqlite:///{tmp_path / name / 'warehouse.db'}"
    store = open_store(f"file://{tmp_path / name / 'artifacts'}")
    generate_world(dataclasses.replace(PRESETS["tiny"], end_ds=DS), url, store)
    ingest.run_ingest(DayRun(DS, settings, store, url))
    return url, store, settings


def _shards(url, store, settings, **kwargs):
    for shard in run.plan_shards(settings.compose):
        run.compose_shard(DayRun(DS, settings, store, url),
                          shard["kind"], shard["shard"], shard["of"], **kwargs)
    return run.publish_texts(DayRun(DS, settings, store, url))


def _texts(store) -> dict:
    out = {}
    for dataset, id_col in ((PREFERENCE_TEXTS, "user_id"), (AUTHOR_TEXTS, "author_id")):
        for r in dataset.read(store, DS, "texts").to_pylist():
            out[(dataset.name, r[id_col])] = tuple(r[k] for k in KEYS)
    return out


def test_the_batch_path_writes_the_texts_the_shards_path_writes(tmp_path):
    url, store, settings = _home(tmp_path, "shards")
    _shards(url, store, settings, backend=KeywordBackend())
    by_shards = _texts(store)

    url, store, settings = _home(tmp_path, "batch", generation="batch")
    exported = batch.export_batch(DayRun(DS, settings, store, url))
    lines = [json.loads(x) for x in
             store.get_text(f"{batch.batch_prefix(DS)}/requests.jsonl").splitlines()]
    n_texts = exported["inputs"]["users"] + exported["inputs"]["authors"]
    assert n_texts == len(by_shards) and len(lines) == exported["requests"] == n_texts * 4
    assert len({line["custom_id"] for line in lines}) == len(lines)
    body = lines[0]["body"]
    assert lines[0]["url"] == "/v1/chat/completions" and body["continue_final_message"]
    assert body["messages"][-1]["role"] == "assistant" and body["temperature"] == 0.0
    assert body["stop"] == ["\n"] and body["max_tokens"] == settings.compose.max_new_tokens

    batch.run_locally(DS, store, KeywordBackend())
    results = store.get_text(f"{batch.batch_prefix(DS)}/results.jsonl").splitlines()
    assert len(results) == len(lines)
    assert json.loads(results[0])["response"]["body"]["choices"][0]["message"]["content"]
    _shards(url, store, settings)  # generation = "batch": the shards read the answers
    assert _texts(store) == by_shards  # same texts, statuses and cache keys

    # a lost answer and an error line: those texts fail with the reason, no other moves
    kept = [json.loads(x) for x in results]
    kept[1] = {"id": "x", "custom_id": kept[1]["custom_id"], "response": None,
               "error": {"code": "oom", "message": "out of memory"}}
    store.put_text(f"{batch.batch_prefix(DS)}/results.jsonl",
                   "".join(json.dumps(x) + "\n" for x in kept[1:]))
    store.put_text(f"{batch.batch_prefix(DS)}/requests.jsonl", "")  # not read again
    for dataset in (PREFERENCE_TEXTS, AUTHOR_TEXTS):  # no cache: every text from the batch
        store.delete(f"{partition_prefix(dataset.name, DS)}/{MANIFEST}")
    _shards(url, store, settings)
    after = _texts(store)
    failed = {k for k, v in after.items() if v[1] == "failed"}
    assert 1 <= len(failed) <= 2
    for key in failed:
        assert by_shards[key][1] == "ok"
    assert {k: v for k, v in after.items() if k not in failed} == \
        {k: v for k, v in by_shards.items() if k not in failed}
    reasons = [r["reason"] for r in PREFERENCE_TEXTS.read(store, DS, "texts").to_pylist()
               + AUTHOR_TEXTS.read(store, DS, "texts").to_pylist() if r["status"] == "failed"]
    assert reasons and all("empty" in r for r in reasons)


def test_results_for_another_model_are_refused(tmp_path):
    url, store, settings = _home(tmp_path, "batch", generation="batch")
    batch.export_batch(DayRun(DS, settings, store, url))
    batch.run_locally(DS, store, KeywordBackend())
    meta = json.loads(store.get_text(f"{batch.batch_prefix(DS)}/batch.json"))
    store.put_text(f"{batch.batch_prefix(DS)}/batch.json",
                   json.dumps({**meta, "model_version": "other-model"}))
    with pytest.raises(ValueError, match="exported for other-model"):
        run.compose_shard(DayRun(DS, settings, store, url), "users", 0, 2)
