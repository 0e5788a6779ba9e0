"""Does a preference text carry its user's taste? Measured on the demo world, whose latent
truth is known: the share of texts naming the user's dominant latent category (or one of
its words), against the same share after shuffling texts across users (chance level)."""

from __future__ import annotations

import numpy as np

CATEGORY_WORDS = {
    "singing": ("sing", "song", "ballad", "karaoke", "chorus"),
    "dancing": ("danc", "choreograph"),
    "gaming": ("gam", "ranked", "esports"),
    "outdoors": ("outdoor", "hike", "mountain", "market", "scenery", "riverside"),
    "cooking": ("cook", "dish", "recipe", "kitchen", "food", "bake"),
    "chatting": ("chat", "talk", "stories", "questions"),
    "fitness": ("fitness", "workout", "gym", "yoga", "stretch"),
    "crafts": ("craft", "pottery", "paint", "sketch", "handmade"),
    "comedy": ("comedy", "joke", "sketches", "stand-up", "roast"),
    "fashion": ("fashion", "outfit", "makeup", "dressing"),
}


def answers_only(text: str) -> str:
    """The answers of a ``Section: answer`` text, without the section headers."""
    return " ".join(line.split(": ", 1)[1] if ": " in line else line
                    for line in text.lower().split("\n"))


def names_category(text: str, category: str) -> bool:
    """True if the answers mention ``category`` or one of its words.

    >>> names_category("Favoured author types: singing streamers", "singing")
    True
    >>> names_category("Favoured author types: cooks", "singing")
    False
    """
    body = answers_only(text)
    return any(w in body for w in (category, *CATEGORY_WORDS.get(category, ())))


def category_share(texts: list[str], categories: list[str], seed: int = 0,
                   shuffles: int = 20) -> dict[str, float]:
    """Share naming the user's own dominant category vs the mean over random shuffles."""
    own = float(np.mean([names_category(t, c) for t, c in zip(texts, categories, strict=True)]))
    rng = np.random.default_rng(seed)
    shuffled = [float(np.mean([names_category(texts[j], c)
                               for j, c in zip(rng.permutation(len(texts)), categories,
                                               strict=True)]))
                for _ in range(shuffles)]
    return {"own": own, "shuffled": float(np.mean(shuffled)),
            "shuffled_max": float(np.max(shuffled)), "n": len(texts)}
