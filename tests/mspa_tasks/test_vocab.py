"""The demo world's vocabularies (mspa_tasks.vocab) agree with themselves and with the
composer's evaluation, which reads texts for the same categories."""

from __future__ import annotations

import math

from mspa_tasks import vocab as V
from mspa_tasks.compose.evaluate import CATEGORY_WORDS


def test_weights_are_distributions_over_their_names():
    for names, weights in ((V.CATEGORIES, V.CATEGORY_WEIGHTS), (V.REGIONS, V.REGION_WEIGHTS)):
        assert len(names) == len(weights) == len(set(names))
        assert math.isclose(sum(weights), 1.0) and min(weights) > 0


def test_every_category_and_region_has_its_words():
    assert set(V.SCENES) == set(V.CATEGORIES) and all(V.SCENES.values())
    assert set(V.CITIES) == set(V.REGIONS)
    assert set(CATEGORY_WORDS) == set(V.CATEGORIES)  # the evaluation can judge each one
