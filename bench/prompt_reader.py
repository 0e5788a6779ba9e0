"""The reference row of bench/retrain: what an ideal reader of the recommender's prompt gets.

A logistic regression over the features each candidate line and the history show, fitted on
the train examples (a candidate is positive when it is the ground truth) and ranking the
validation examples' candidates by its probability:

* ``log_tips``: log(1 + the tips the candidate line shows);
* ``tipped_before``: the user tipped the candidate before the labelled tip (the history shows
  it; negatives are never such authors, so this one names the truth when it fires);
* ``category_share`` / ``region_share``: the share of the history's tips in the candidate's
  category / place (the profile the line shows);
* ``similarity``: cosine of the candidate's author vector to the mean of the history's (what
  the line's text and the history's texts say alike);
* ``offline``: the line says the author was not live at the tip.

Not a model we serve: a bound on what the prompt lets a reader decide, so that a recommender
row can be read against it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

FEATURES = ("log_tips", "tipped_before", "category_share", "region_share", "similarity",
            "offline")


class History:
    """What each example's history holds: every user's tips in session order, the authors'
    profile fields and unit vectors."""

    def __init__(self, sessions: list[tuple[int, int, int]], profile: dict[int, dict],
                 vectors: dict[int, np.ndarray]) -> None:
        self.tips: dict[int, list[tuple[int, int]]] = {}
        for user, seq, author in sorted(sessions):
            self.tips.setdefault(user, []).append((seq, author))
        self.profile, self.vectors = profile, vectors

    def before(self, user: int, seq: int) -> list[int]:
        return [a for s, a in self.tips.get(user, []) if s < seq]


def _line(prompt: list[dict[str, str]], label: str) -> str:
    block = prompt[-1]["content"].split("<data>\n")[2]
    found = re.search(rf"^{re.escape(label)}: [^\n]*", block, re.MULTILINE)
    return found.group(0) if found else ""


def features(row: dict[str, Any], history: History) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate of ``row``, in prompt order.

    >>> h = History([(1, 0, 7), (1, 1, 7), (1, 2, 8), (1, 3, 9)],
    ...             {7: {"category": "singing", "location": "Chengdu"},
    ...              8: {"category": "gaming", "location": "Xi'an"},
    ...              9: {"category": "singing", "location": "Xi'an"}},
    ...             {7: np.array([1.0, 0.0]), 8: np.array([0.0, 1.0]), 9: np.array([1.0, 0.0])})
    >>> row = {"user_id": 1, "tip_seq": 3, "candidate_ids": [9, 7], "candidate_labels": ["A", "B"],
    ...        "prompt": [{"role": "user", "content": "x<data>\\nh\\n</data>\\n<data>\\n"
    ...                    "A: s | 4 tips in 30 days | offline\\nB: s | 0 tips in 30 days\\n</data>"}]}
    >>> features(row, h).round(3).tolist()
    [[1.609, 0.0, 0.667, 0.333, 0.894, 1.0], [0.0, 1.0, 0.667, 0.667, 0.894, 0.0]]
    """
    before = history.before(int(row["user_id"]), int(row["tip_seq"]))
    counts = Counter(before)
    n = max(len(before), 1)
    cats = Counter(history.profile.get(a, {}).get("category") for a in before)
    places = Counter(history.profile.get(a, {}).get("location") for a in before)
    seen = [history.vectors[a] for a in before if a in history.vectors]
    centre = np.mean(seen, axis=0) if seen else None
    if centre is not None:
        centre = centre / (np.linalg.norm(centre) or 1.0)
    out = []
    for author, label in zip(row["candidate_ids"], row["candidate_labels"], strict=True):
        line = _line(row["prompt"], label)
        tips = re.search(r"(\d+) tips? in \d+ days", line)
        prof = history.profile.get(int(author), {})
        vec = history.vectors.get(int(author))
        out.append([np.log1p(int(tips.group(1)) if tips else 0), float(counts[author] > 0),
                    cats[prof.get("category")] / n if prof.get("category") else 0.0,
                    places[prof.get("location")] / n if prof.get("location") else 0.0,
                    float(vec @ centre) if vec is not None and centre is not None else 0.0,
                    float("| offline" in line)])
    return np.asarray(out, dtype=np.float64)


def fit(rows: list[dict[str, Any]], history: History, seed: int = 0):
    """The logistic regression over the train examples' candidates (standardised features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.vstack([features(r, history) for r in rows])
    y = np.concatenate([[int(a == r["ground_truth"]) for a in r["candidate_ids"]] for r in rows])
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed)
                         ).fit(x, y)


def orders(model, rows: list[dict[str, Any]], history: History) -> list[list[int]]:
    """Each example's candidate positions, most probable first (ties keep prompt order)."""
    return [np.argsort(-model.predict_proba(features(r, history))[:, 1], kind="stable").tolist()
            for r in rows]
