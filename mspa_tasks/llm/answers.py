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
_NUMBER = re.compile(r"(?<![0-9A-Za-z])[#]?(\d+)(?![0-9])")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list | tuple) and completion:
        last = completion[-1]
        return str(last.get("content", "")) if isinstance(last, dict) else str(last)
    return ""


def parse_recommended(text: str, candidate_ids: Sequence[int]) -> int | None:
    """The candidate the text recommends, else None.

    With a "Recommended author" phrase (any case, any punctuation): the first candidate id
    after the last such phrase. Without one: the candidate, if the text names exactly one
    distinct candidate id (a text listing several recommends none of them). Numbers that are
    not candidates, and digits inside longer numbers, never count.

    >>> parse_recommended("Recommended author: 42.", [7, 42])
    42
    >>> parse_recommended("RECOMMENDED AUTHOR -> author #7 (the singer)", [7, 42])
    7
    >>> parse_recommended("Recommended author: 99", [7, 42]) is None
    True
    >>> parse_recommended("This streamer (42) fits", [7, 42]), parse_recommended("7 or 42?", [7, 42])
    (42, None)
    """
    text = text or ""
    allowed = {int(c) for c in candidate_ids}
    matches = list(_RECOMMENDED.finditer(text))
    if matches:
        for number in _NUMBER.finditer(text[matches[-1].end():]):
            if int(number.group(1)) in allowed:
                return int(number.group(1))
        return None
    named = {int(n.group(1)) for n in _NUMBER.finditer(text)} & allowed
    return named.pop() if len(named) == 1 else None


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
