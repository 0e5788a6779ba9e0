"""The model-free backend: each section's answer is the most weighted terms of the data
fields that section asks about. For runs where no model fits the time (a scale world on CPU)
and as the floor a model must beat; its texts say ``keywords-v1`` as model.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from mspa_tasks.llm.requests import Generation, Request
from mspa_tasks.llm.validate import content_words

log = logging.getLogger(__name__)


class KeywordBackend:
    """Extractive keywords without a model, deterministic.

    The fenced data is one line per author (``<category> streamer <nick> in <place>
    (tipped Nx); intro: …; frames: …; speech: …; comments: …``, see
    ``prompting.AuthorContent.render``). A section reads the fields named in
    :attr:`SECTION_FIELDS`, tier by tier until one yields a term (a user's line is often cut
    by the context budget before its frames or comments; unknown sections read every field);
    each term counts once per author line, times the times that author was tipped, and the
    ``top`` terms by weight (ties: first seen) are the answer. Whole phrases for categories
    and places, content words for free text.
    """

    model_version = "keywords-v1"
    modality = "text"
    SECTION_FIELDS = {
        "Favoured author types": (("category",), ("intro",)),
        "Author type": (("category",), ("intro",)),
        "Environment and scene": (("frames",), ("intro",)),
        "Atmosphere and style": (("speech", "comments"), ("intro",)),
        "Regional bias": (("place",),), "Region": (("place",),),
    }
    _DATA = re.compile(r"<data>\n(.*)\n</data>", re.DOTALL)
    _WHO = re.compile(r"^(?P<category>.*?) streamer .*?(?: in (?P<place>[^(]*?))?"
                      r"(?: \(tipped (?P<times>\d+)x\))?$")

    def __init__(self, top: int = 3, **_: Any) -> None:
        self.top = top

    @classmethod
    def fields(cls, line: str) -> tuple[dict[str, list[str]], int]:
        """The terms of one author line by field, and the times tipped (1 if not said).

        >>> KeywordBackend.fields("- music streamer Mo in Chengdu (tipped 2x); intro: calm songs")
        ({'category': ['music'], 'place': ['Chengdu'], 'intro': ['calm', 'songs']}, 2)
        """
        parts = line.removeprefix("- ").split("; ")
        who = cls._WHO.match(parts[0])
        out: dict[str, list[str]] = {}
        times = 1
        if who:
            for key in ("category", "place"):
                if who[key] and who[key].strip() not in ("", "unknown"):
                    out[key] = [who[key].strip()]
            times = int(who["times"] or 1)
        for part in parts[1:]:
            name, _, text = part.partition(": ")
            if name in ("intro", "frames", "speech", "comments"):
                out.setdefault(name, []).extend(content_words(text))
        return out, times

    def answer(self, data: str, section: str) -> str:
        lines = [self.fields(line) for line in data.splitlines()]
        for wanted in self.SECTION_FIELDS.get(section, (None,)):
            weights: dict[str, int] = {}
            for fields, times in lines:
                terms = dict.fromkeys(t for name, values in fields.items()
                                      if wanted is None or name in wanted for t in values)
                for term in terms:
                    weights[term] = weights.get(term, 0) + times
            if weights:
                ranked = sorted(weights, key=lambda t: -weights[t])  # ties keep first seen
                return ", ".join(ranked[: self.top])
        return ""

    def generate(self, requests: list[Request], seed: int | None = None) -> list[Generation]:
        out = []
        for request in requests:
            match = self._DATA.search(request.messages[-1]["content"])
            data = match.group(1) if match else ""
            text = self.answer(data, request.prefill.removesuffix(":"))
            out.append(Generation(text, len(data.split()), len(text.split())))
        return out
