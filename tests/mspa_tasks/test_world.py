from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image

from mspa_tasks import vocab as V
from mspa_tasks.artifacts import open_store
from mspa_tasks.datasets import WORLD_TRUTH
from mspa_tasks.days import window_for
from mspa_tasks.world.generate import PRESETS, WorldSpec, generate_world

SPEC = dataclasses.replace(PRESETS["tiny"], end_ds="2026-11-20")


def _tables(url: str) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    out = {t: pd.read_sql(f"SELECT * FROM {t}", engine) for t in
           ("tip_events", "authors", "author_media", "live_comments", "impressions",
            "live_rooms")}
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    url = f"sqlite:///{root / 'w.db'}"
    store = open_store(f"file://{root / 'art'}")
    summary = generate_world(SPEC, url, store)
    return url, store, summary, _tables(url)


def test_same_seed_same_world(tiny, tmp_path):
    url, _, summary, tables = tiny
    other = f"sqlite:///{tmp_path / 'w2.db'}"
    generate_world(SPEC, other, open_store(f"file://{tmp_path / 'art2'}"))
    again = _tables(other)
    for name, df in tables.items():
        left = df.drop(columns=["frame_uri"], errors="ignore")
        right = again[name].drop(columns=["frame_uri"], errors="ignore")
        pd.testing.assert_frame_equal(left, right)


def test_rows_and_ledger_agree(tiny):
    _, _, summary, tables = tiny
    assert summary.rows["tip_events"] == len(tables["tip_events"])
    dirty = sum(summary.expected_quarantine["tip_events"].values())
    assert len(tables["tip_events"]) == summary.clean_tip_events + dirty
    assert tables["tip_events"].load_seq.is_unique


def test_tips_follow_latent_preferences(tiny):
    """Users tip their top latent category far above its base rate: the truth is recoverable."""
    _, store, _, tables = tiny
    users = WORLD_TRUTH.read(store, WORLD_TRUTH.days(store)[-1], "users").to_pandas()
    tips = tables["tip_events"].dropna(subset=["user_id", "author_id"])
    tips = tips.merge(tables["authors"].dropna(subset=["author_id"])
                      .drop_duplicates("author_id")[["author_id", "category"]], on="author_id")
    prefs = users.set_index("user_id")[[c for c in users.columns if c.startswith("pref_")]]
    top = prefs.idxmax(axis=1).str.removeprefix("pref_")
    tips["top"] = tips.user_id.map(top)
    share_top = (tips.category == tips.top).mean()
    base = tips.category.value_counts(normalize=True)
    expected_by_chance = tips.top.map(base).mean()
    assert share_top > 2 * expected_by_chance


def test_popularity_has_a_long_tail(tiny):
    _, _, _, tables = tiny
    per_author = tables["tip_events"].author_id.value_counts()
    top_decile = per_author.head(max(1, len(per_author) // 10)).sum() / per_author.sum()
    assert top_decile > 0.3


def test_frames_are_real_pngs_in_the_store(tiny):
    _, store, _, tables = tiny
    uri = tables["author_media"].frame_uri.iloc[0]
    key = uri.removeprefix(store.root_uri + "/")
    image = Image.open(io.BytesIO(store.get_bytes(key)))
    assert image.format == "PNG" and image.size == (32, 32)


def test_intros_and_transcripts_say_each_authors_latent_category(tiny):
    """What the composer reads carries the truth it should recover: every written intro and
    every transcript uses a phrase of the author's own latent category."""
    _, store, _, tables = tiny
    latents = WORLD_TRUTH.read(store, WORLD_TRUTH.days(store)[-1], "authors").to_pandas()
    category = dict(zip(latents.author_id, latents.category, strict=True))
    authors = tables["authors"].dropna(subset=["intro"])
    # the world's own authors (planted bad rows have no latents) with a written intro
    authors = authors[authors.author_id.isin(category) & (authors.intro.str.strip() != "")]
    assert len(authors) > 0.9 * len(category)
    for row in authors.itertuples():
        phrases = V.CATEGORY_PHRASES[category[row.author_id]]
        assert any(p.lower() in row.intro.lower() for p in phrases), (row.author_id, row.intro)
    media = tables["author_media"]
    media = media[media.author_id.isin(category)]
    assert len(media) > 0.9 * len(tables["author_media"])
    for row in media.itertuples():
        lines = V.ASR_LINES[category[row.author_id]]
        assert any(line in row.asr_text for line in lines), (row.author_id, row.asr_text)


def test_a_few_comments_are_prompt_injections(tiny):
    """The composer must meet hostile text: about 1% of comments are injection strings."""
    comments = tiny[3]["live_comments"].text
    share = comments.isin(V.INJECTIONS).mean()
    assert 0 < share < 0.05, share


def test_viewers_click_more_often_than_they_gift(tiny):
    impressions = tiny[3]["impressions"]
    assert impressions.clicked.mean() > impressions.gifted.mean() > 0


def test_spec_validation():
    with pytest.raises(ValueError, match="world too small"):
        WorldSpec(n_users=5)
    with pytest.raises(ValueError, match="must exceed window_days"):
        WorldSpec(n_days=30)


def test_scale_preset_meets_the_issue_sizes():
    spec = PRESETS["scale"]
    expected_events = spec.n_users * spec.tips_per_user_day * spec.n_days
    assert spec.n_authors >= 100_000 and expected_events >= 1_000_000
    assert np.isclose(PRESETS["default"].n_users, 2_000)


def test_drifting_authors_change_mood_in_their_media(tiny):
    """Authors that drift show their old atmosphere before the drift day and the new after."""
    _, store, _, tables = tiny
    latents = WORLD_TRUTH.read(store, WORLD_TRUTH.days(store)[-1], "authors")
    latents = latents.to_pandas().set_index("author_id")
    media = tables["author_media"]
    day0_ms = window_for(SPEC.end_ds, SPEC.n_days).start_ms
    checked = 0
    for row in media.itertuples():
        author = latents.loc[row.author_id]
        if author.drift_day < 0:
            continue
        day = (row.ts - day0_ms) // 86_400_000
        expected = author.atmosphere_after if day >= author.drift_day else author.atmosphere_before
        assert f"{expected} mood" in row.frame_caption
        checked += 1
    assert checked > 10


# ---- the kuailive shape (the default and demo presets) -------------------------------------

KUAI = dataclasses.replace(PRESETS["demo"], end_ds="2026-11-20")


@pytest.fixture(scope="module")
def kuai(tmp_path_factory):
    root = tmp_path_factory.mktemp("kuai")
    url = f"sqlite:///{root / 'w.db'}"
    store = open_store(f"file://{root / 'art'}")
    generate_world(KUAI, url, store)
    day = WORLD_TRUTH.days(store)[-1]
    truth = {t: WORLD_TRUTH.read(store, day, t).to_pandas() for t in ("authors", "live")}
    return url, truth, _tables(url)


def _day(ts: pd.Series) -> pd.Series:
    return (ts - window_for(KUAI.end_ds, KUAI.n_days).start_ms) // 86_400_000


def test_the_live_rooms_are_the_worlds_live_days_and_cover_every_tip_and_impression(kuai):
    """``live_rooms`` says who is live when: one room per live author-day, the same days as
    the latent truth, each tip and each impression inside a room of its author."""
    _, truth, t = kuai
    rooms = t["live_rooms"]
    day0 = window_for(KUAI.end_ds, KUAI.n_days).start_ms
    assert ((rooms.end_ts - rooms.start_ts) == 86_400_000 - 1).all()
    assert set(zip(rooms.author_id, (rooms.start_ts - day0) // 86_400_000, strict=True)) == set(
        zip(truth["live"].author_id, truth["live"].day, strict=True))
    assert (rooms.live_id == rooms.author_id * 1000 + (rooms.start_ts - day0) // 86_400_000).all()
    live = set(zip(rooms.author_id, (rooms.start_ts - day0) // 86_400_000, strict=True))
    tips = t["tip_events"].dropna(subset=["author_id", "ts"])
    tips = tips[tips.author_id.isin(rooms.author_id) & (tips.ts >= day0)]
    inside = [(a, d) in live for a, d in zip(tips.author_id, _day(tips.ts), strict=True)]
    assert np.mean(inside) > 0.99  # the dirty rows (late, shifted) are the rest
    shown = t["impressions"]
    assert all((a, d) in live for a, d in zip(shown.author_id, _day(shown.ts), strict=True))
    assert len(live) < 0.5 * KUAI.n_authors * KUAI.n_days  # most authors are offline most days


def test_kuailive_world_meets_its_calibrated_marginals(kuai):
    """Gifts and clicks per user-day and gifts per click within 25% of KuaiLive's figures."""
    from mspa_tasks.world.calibration import measure, out_of_band

    url, _, _ = kuai
    values = measure(url, KUAI)
    assert out_of_band(values) == []
    assert values["authors per user"] >= 5
    # heavy tail: the median interacted author has well under the mean
    assert values["median / mean interactions per interacted author"] < 0.6


def test_impressions_and_tips_reach_only_authors_live_that_day(kuai):
    _, truth, tables = kuai
    live = set(zip(truth["live"].author_id, truth["live"].day, strict=True))
    imp = tables["impressions"]
    assert all(p in live for p in zip(imp.author_id, _day(imp.ts), strict=True))
    tips = tables["tip_events"].dropna(subset=["user_id", "author_id"])
    tips = tips[tips.author_id.isin(truth["authors"].author_id) & (_day(tips.ts) < KUAI.n_days)]
    assert all(p in live for p in zip(tips.author_id.astype(int), _day(tips.ts), strict=True))
    # and nobody is live every day on average: authors go live on some days only
    share = truth["authors"].live_days.mean() / KUAI.n_days
    assert 0.1 < share < 0.6


def test_new_authors_appear_during_the_span_with_their_profile(kuai):
    """About new_author_share of the authors first go live inside the span; their profile
    is dated to that day, and nothing shows or tips them before it."""
    _, truth, tables = kuai
    authors = truth["authors"].set_index("author_id")
    new = authors[authors.first_live_day > 0]
    assert 0.1 < len(new) / len(authors) < 0.3
    profiles = tables["authors"].dropna(subset=["author_id"]).groupby("author_id").updated_at.max()
    assert (_day(profiles.loc[new.index]) == new.first_live_day).all()
    imp = tables["impressions"]
    first = imp.author_id.map(authors.first_live_day)
    assert (_day(imp.ts) >= first).all()
