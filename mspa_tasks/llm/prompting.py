"""Prompts, untrusted-content fencing and fair context budgets.

Author content (nicknames, intros, captions, ASR, comments) is untrusted: it is placed only
between ``<data>`` and ``</data>``, after removing anything that could close or reopen that
fence, and the system prompt says it is data. Each requested section is asked for in its own
sequence whose assistant turn starts with the section header, so the output's structure
never depends on the model (or a comment) choosing it.

A user's tipped authors are rendered most recent first. The total character budget is
shared fairly: every author gets ``budget // n`` characters (at least ``min_author_chars``);
authors that do not fit at that floor are omitted, oldest first. What was cut is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

PROMPT_DIR = Path(__file__).parent / "prompts"
_FENCE = re.compile(r"</?\s*data\s*>", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Section:
    name: str
    question: str


@dataclass(frozen=True)
class PromptSpec:
    name: str
    version: str
    system: str
    intro: str
    sections: tuple[Section, ...]

    def messages(self, data: str, section: Section) -> list[dict[str, str]]:
        """Chat messages asking for one section about the fenced ``data``."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": f"{self.intro}\n<data>\n{data}\n</data>\n{section.question}"},
        ]


@cache
def load_prompt(name: str) -> PromptSpec:
    """The prompt ``prompts/<name>.toml``; its version is the file name plus a content hash.

    >>> spec = load_prompt("preference_v1")
    >>> [s.name for s in spec.sections][:2], spec.version.startswith("preference_v1+")
    (['Favoured author types', 'Environment and scene'], True)
    """
    path = PROMPT_DIR / f"{name}.toml"
    raw = path.read_bytes()
    data = tomllib.loads(raw.decode())
    return PromptSpec(
        name=data["name"], version=f"{name}+{hashlib.sha256(raw).hexdigest()[:8]}",
        system=data["system"], intro=data["intro"],
        sections=tuple(Section(s["name"], s["question"]) for s in data["sections"]),
    )


def clean(text: str | None, limit: int | None = None) -> str:
    """Untrusted text made safe to fence: no fence tags, no control or bidi-override
    characters, whitespace collapsed, cut to ``limit`` characters.

    >>> clean("hi </data> <DATA>there\\x00  \\u202eyou")
    'hi there you'
    """
    if not text:
        return ""
    text = _CONTROL.sub(" ", _FENCE.sub(" ", text))
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return text


@dataclass(frozen=True)
class AuthorContent:
    author_id: int
    nickname: str | None
    location: str | None
    category: str | None
    intro: str | None
    captions: tuple[str, ...] = ()
    speech: tuple[str, ...] = ()
    comments: tuple[str, ...] = ()

    def render(self, budget: int, times_tipped: int | None = None) -> tuple[str, bool]:
        """One line about this author within ``budget`` characters; True if anything was cut.

        Fields are added in priority order (who, what, where, how it looks and sounds, what
        viewers say) and the line is cut at the budget.
        """
        who = f"{clean(self.category) or 'unknown'} streamer {clean(self.nickname)}".strip()
        parts = [who + (f" in {clean(self.location)}" if self.location else "")]
        if times_tipped:
            parts[0] += f" (tipped {times_tipped}x)"
        if self.intro:
            parts.append("intro: " + clean(self.intro))
        if self.captions:
            parts.append("frames: " + " / ".join(clean(c) for c in self.captions))
        if self.speech:
            parts.append("speech: " + " / ".join(clean(s) for s in self.speech))
        if self.comments:
            parts.append("comments: " + " | ".join(clean(c) for c in self.comments))
        line = "; ".join(parts)
        if len(line) <= budget:
            return line, False
        return clean(line, budget), True


@dataclass
class RenderedInput:
    entity_id: int
    data: str
    input_hash: str
    authors_in: list[int] = field(default_factory=list)
    authors_truncated: list[int] = field(default_factory=list)
    authors_omitted: list[int] = field(default_factory=list)


def input_hash(model_version: str, prompt_version: str, data: str) -> str:
    """Cache key: the model, the prompt and the exact data the model reads."""
    payload = json.dumps([model_version, prompt_version, data])
    return hashlib.sha256(payload.encode()).hexdigest()


def render_user(user_id: int, tipped: list[tuple[int, int]], content: dict[int, AuthorContent],
                budget: int, min_author_chars: int, model_version: str,
                prompt_version: str) -> RenderedInput:
    """The fenced data block of one user.

    ``tipped`` lists ``(author_id, times_tipped)`` most recent first (distinct authors).
    Each author gets an equal share of ``budget`` (at least ``min_author_chars``, so the
    oldest are omitted when many were tipped) and becomes one ``- `` bullet line.
    """
    fit = max(1, min(len(tipped), budget // max(1, min_author_chars)))
    per_author = budget // fit if tipped else budget
    lines, shown, truncated = [], [], []
    for author_id, times in tipped[:fit]:
        author = content.get(author_id) or AuthorContent(author_id, None, None, None, None)
        line, cut = author.render(per_author, times)
        lines.append("- " + line)
        shown.append(author_id)
        if cut:
            truncated.append(author_id)
    data = "\n".join(lines)
    return RenderedInput(
        entity_id=user_id, data=data,
        input_hash=input_hash(model_version, prompt_version, data), authors_in=shown,
        authors_truncated=truncated, authors_omitted=[a for a, _ in tipped[fit:]])


def render_author(author: AuthorContent, budget: int, model_version: str,
                  prompt_version: str) -> RenderedInput:
    data, cut = author.render(budget)
    return RenderedInput(
        entity_id=author.author_id, data=data,
        input_hash=input_hash(model_version, prompt_version, data),
        authors_in=[author.author_id], authors_truncated=[author.author_id] if cut else [])
