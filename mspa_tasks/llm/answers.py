"""The recommender's answer contract: the three key phrases in order, and the one parser of
the recommended author. Shared by the GRPO rewards (:mod:`mspa_tasks.align.rewards`), the
evaluation of a recommender (:mod:`.ranking`) and the replay's Acc@m.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

PHRASES = ("User Preference", "Recommendation Reason", "Recommended author")
_RECOMMENDED = re.compile(r"recommended\s+author", re.IGNORECASE)
_TOKEN = re.compile(r"[0-9A-Za-z]+")
LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list | tuple) and completion:
        last = completion[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    return ""


def labels_of(row: dict[str, Any]) -> list[str]:
    """The labels an example's prompt shows its candidates by, in prompt order: its
    ``candidate_labels`` (letters), or the author ids themselves (examples without labels).

    >>> labels_of({"candidate_ids": [7, 42]}), labels_of({"candidate_ids": [7, 42],
    ...                                                   "candidate_labels": ["A", "B"]})
    (['7', '42'], ['A', 'B'])
    """
    return [str(x) for x in (row.get("candidate_labels") or row["candidate_ids"])]


def parse_choice(text: str, labels: Sequence[str]) -> int | None:
    """The position of the candidate the text recommends, else None.

    With a "Recommended author" phrase (any case, any punctuation): the first label after
    the last such phrase (labels are whole words, case-sensitive: "a" is not "A"). Without
    one: with numeric labels (author ids), the candidate if the text names exactly one
    distinct id (a text listing several recommends none of them); with letters, only a text
    that is the label alone. Numbers that are not candidates, and digits inside longer
    numbers, never count.

    >>> parse_choice("Recommended author: 42.", ["7", "42"])
    1
    >>> parse_choice("RECOMMENDED AUTHOR -> author #7 (the singer)", ["7", "42"])
    0
    >>> parse_choice("Recommended author: 99", ["7", "42"]) is None
    True
    >>> parse_choice("This streamer (42) fits", ["7", "42"]), parse_choice("7 or 42?", ["7", "42"])
    (1, None)
    >>> parse_choice("Recommended author: candidate C", ["A", "B", "C"])
    2
    >>> parse_choice("A viewer like this tips B", ["A", "B"]), parse_choice(" B. ", ["A", "B"])
    (None, 1)
    """
    text = text or ""
    index = {str(label): i for i, label in enumerate(labels)}
    matches = list(_RECOMMENDED.finditer(text))
    if matches:
        for token in _TOKEN.finditer(text[matches[-1].end():]):
            if token.group() in index:
                return index[token.group()]
        return None
    if all(label.isdigit() for label in index):
        named = {t.group() for t in _TOKEN.finditer(text)} & index.keys()
        return index[named.pop()] if len(named) == 1 else None
    return index.get(text.strip().strip(".:;!*#()[]<> "))


def parse_recommended(text: str, candidate_ids: Sequence[int],
                      labels: Sequence[str] | None = None) -> int | None:
    """The author id the text recommends (:func:`parse_choice` over ``labels``, by default
    the ids themselves), else None.

    >>> parse_recommended("Recommended author: 42.", [7, 42])
    42
    >>> parse_recommended("Recommended author: B", [7, 42], ["A", "B"])
    42
    """
    labels = [str(c) for c in candidate_ids] if labels is None else labels
    picked = parse_choice(text, labels)
    return None if picked is None else int(candidate_ids[picked])


def answer_line(label: str) -> str:
    """The recommendation line naming ``label``, as the recommender writes it."""
    return f"{PHRASES[2]}: {label}"


def has_format(text: str) -> bool:
    """The three phrases present, in order (case-insensitive).

    >>> has_format("User Preference: x. Recommendation Reason: y. Recommended author: 3")
    True
    >>> has_format("Recommended author: 3. User Preference: x. Recommendation Reason: y")
    False
    """
    lowered, start = (text or "").lower(), 0
    for phrase in PHRASES:
        found = lowered.find(phrase.lower(), start)
        if found < 0:
            return False
        start = found + len(phrase)
    return True
