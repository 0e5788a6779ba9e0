"""Does a preference text carry its user's taste (mspa_tasks.compose.evaluate)."""

from __future__ import annotations

from mspa_tasks.compose.evaluate import category_share, names_category


def test_the_section_headers_do_not_count_as_naming_a_category():
    assert not names_category("Cooking notes: none of this\nTaste: loud karaoke", "cooking")
    assert names_category("Taste: loud karaoke", "singing")


def test_texts_that_name_their_own_users_taste_beat_the_shuffled_chance_level():
    categories = ["singing", "cooking", "gaming", "fitness"] * 5
    texts = {"singing": "Taste: ballads", "cooking": "Taste: kitchen shows",
             "gaming": "Taste: ranked esports", "fitness": "Taste: yoga"}
    share = category_share([texts[c] for c in categories], categories, shuffles=50)
    assert share["own"] == 1.0 and share["n"] == 20
    assert 0.1 < share["shuffled"] < 0.5 and share["shuffled_max"] < 1.0
    assert category_share([texts["singing"]] * 20, categories)["own"] == 0.25
