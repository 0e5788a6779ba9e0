"""Checks on generated text. A failing answer is retried within a fixed budget, then stored
as failed with its reason — never dropped, never replaced by a template.

Each section's answer must be: non-empty, within length bounds, mostly letters (any script),
not a repetition loop, and *grounded*: sharing at least one word stem with the data the
model was shown (a small model that drifts off topic fails here).
"""

from __future__ import annotations

import re

MIN_CHARS = 3
MAX_CHARS = 200
STEM = 4
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
STOPWORDS = frozenset("""
about above after again also answer because been before being between both could does
doing during each from further have having here into itself just more most other over
same should some such than that their them then there these they this those through under
until very what when where which while with would your streamer streamers stream streams
viewer viewers like phrase short tipped recent first""".split())


def content_words(text: str) -> list[str]:
    """Lower-cased content words (letters, at least 4, not stop words), in order.

    >>> content_words("Calming ballads with a view, 2 singers")
    ['calming', 'ballads', 'view', 'singers']
    """
    return [w for w in (m.lower() for m in _WORD.findall(text))
            if len(w) >= STEM and w not in STOPWORDS]


def stems(text: str) -> set[str]:
    """Lower-cased word stems (first 4 letters) of content words.

    >>> sorted(stems("Calming ballads, singing in Chengdu!"))
    ['ball', 'calm', 'chen', 'sing']
    """
    return {w[:STEM] for w in content_words(text)}


def section_problem(answer: str, data: str) -> str | None:
    """Why ``answer`` is unacceptable for a section about ``data``; None if it is fine.

    >>> data = "- singing streamer in Chengdu; intro: calm and cozy"
    >>> [section_problem(a, data) for a in ["", "ok", "calm singing", "x" * 300,
    ...  "12345 !!!", "space rockets", "sing sing sing sing sing sing"]]
    ['empty', 'too_short', None, 'too_long', 'not_language', 'ungrounded', 'repetitive']
    """
    text = answer.strip()
    if not text:
        return "empty"
    if len(text) < MIN_CHARS:
        return "too_short"
    if len(text) > MAX_CHARS:
        return "too_long"
    letters = sum(ch.isalpha() for ch in text)
    if letters / len(text) < 0.5:
        return "not_language"
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) >= 6 and max(words.count(w) for w in set(words)) / len(words) > 0.5:
        return "repetitive"
    if not stems(text) & stems(data):
        return "ungrounded"
    return None


def assemble(sections: list[tuple[str, str]]) -> str:
    """The stored text: one ``Header: answer`` line per section, in prompt order."""
    return "\n".join(f"{name}: {' '.join(answer.split())}" for name, answer in sections)


def has_structure(text: str, section_names: list[str]) -> bool:
    """True if ``text`` has exactly the named sections, in order, each with content.

    >>> has_structure("A: x\\nB: y", ["A", "B"]), has_structure("B: y\\nA: x", ["A", "B"])
    (True, False)
    """
    lines = text.split("\n")
    return len(lines) == len(section_names) and all(
        line.startswith(f"{name}: ") and line[len(name) + 2:].strip()
        for line, name in zip(lines, section_names, strict=True))
