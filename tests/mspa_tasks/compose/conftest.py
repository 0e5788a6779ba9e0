"""A deterministic backend for the composer's bookkeeping tests (cache, shards, counts).

It implements our own ``Backend`` interface and answers with words copied from the fenced
data, so every answer is grounded and the same input always gives the same text. The real
model runs in ``llm/test_hf.py``, the injection test and the DAG's end-to-end test; this
double only keeps the many cache/shard cases inside the test budget.
"""

from __future__ import annotations

import re

import pytest

from mspa_tasks.llm.requests import Generation, Request


class WordsFromDataBackend:
    model_version = "words-from-data-v1"
    modality = "text"

    def __init__(self, fail_sections: set[str] | None = None) -> None:
        self.fail_sections = fail_sections or set()
        self.calls: list[int] = []

    def generate(self, requests: list[Request], seed: int | None = None) -> list[Generation]:
        self.calls.append(len(requests))
        out = []
        for r in requests:
            user = r.messages[-1]["content"]
            data = user.split("<data>", 1)[1].split("</data>", 1)[0]
            words = re.findall(r"[A-Za-z]{4,}", data)
            section = r.prefill.rstrip(":")
            text = "" if section in self.fail_sections else " ".join(words[:4])
            out.append(Generation(text, len(user) // 4, len(text) // 4))
        return out


@pytest.fixture
def words_backend():
    return WordsFromDataBackend()
