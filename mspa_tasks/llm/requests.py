"""What every LLM backend takes and gives: a :class:`Request` (a chat prompt, an optional
prefill and frames), a :class:`Generation` (the answer and its token counts), and the
:class:`Backend` protocol that batches them. The backends: :mod:`.hf` (a causal LM, a
vision-language model), :mod:`.keywords` (no model), :mod:`.openai_backend` (a server);
:mod:`.engine` picks one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    messages: list[dict[str, Any]]
    prefill: str = ""
    images: tuple[Any, ...] = field(default=(), compare=False)
    # When set, the answer may only use tokens of this text (plus a few connectors): see
    # TextBackend. Keeps a very small model's answers extractive and grounded.
    vocabulary: str | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    tokens_in: int
    tokens_out: int


class Backend(Protocol):
    model_version: str
    modality: str

    def generate(self, requests: list[Request], seed: int | None = None) -> list[Generation]: ...


def first_line(text: str) -> str:
    return text.split("\n", 1)[0].strip()
