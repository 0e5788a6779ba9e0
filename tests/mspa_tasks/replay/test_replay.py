"""The replay of a real published day (tiny world -> ingest -> compose -> vectors -> Milvus),
its report, its warehouse rows, reruns and its errors."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from mspa_tasks import replay, vector_store
from mspa_tasks.align.examples import ensure_examples
from mspa_tasks.datasets import InputsMissing
from mspa_tasks.days import window_for
from mspa_tasks.run import DayRun
from mspa_tasks.vectors.build import build_collection
from mspa_tasks.vectors.gate import validate_collection
from mspa_tasks.vectors.lifecycle import publish_collection
from tests.mspa_tasks.align.conftest import D0, DS, publish_day

pytestmark = pytest.mark.slow


def _publish_alias(settings, store, tmp_path):
    target = vector_store.MilvusTarget(uri=str(tmp_path / "milvus.db"))
    for ds in (D0, DS):  # DS's requests were served by D0's collection
        built = build_collection(DayRun(ds, settings, store, milvus=target))
        validate_collection(DayRun(ds, settings, store, milvus=target), built.collection)
        publish_collection(DayRun(ds, settings, milvus=target), built.collection)
    return target


def _rows(url: str, ds: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT metric, model, kind, value, n FROM replay_metrics "
                                    "WHERE ds = :ds ORDER BY metric, model"), {"ds": ds}).all()
    engine.dispose()
    return [tuple(r) for r in rows]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, published):
    """One full replay of DS (every part, the report, a rerun of the report) on a world built
    once for this module; the tests below each read one behaviour off it."""
    home = tmp_path_factory.mktemp("replayed")
    url, store, settings = published((D0, DS), home)
    settings = settings.replaced(replay={"acc_max_users": 3, "ann_sample": 20},
                                 align={"gate": {"max_new_tokens": 32}})
    target = _publish_alias(settings, store, home)
    run = DayRun(DS, settings, store, url, target)
    offline = replay.replay_offline(run)
    ensure_examples(run)  # the task replay.prepare_examples
    u2a = replay.replay_u2a(run)
    ann = replay.replay_ann(run)
    report = replay.publish_report(run).report
    rows = _rows(url, DS)
    replay.publish_report(run)  # a rerun of the report task
    return SimpleNamespace(url=url, store=store, settings=settings, offline=offline, u2a=u2a,
                           ann=ann, report=report, table=report["metrics"], rows=rows)


def test_offline_scores_the_days_impressions_of_users_with_a_vector(replayed):
    cov = replayed.offline["coverage"]
    assert 0 < cov["impressions_scored"] <= cov["impressions"]
    assert cov["requests_with_watched"] > 0 and cov["users_with_vector"] == cov["users"]


def test_u2a_answers_with_the_base_model_before_any_training(replayed):
    assert replayed.u2a["champion"] == "base-packaged-smollm2-135m-instruct"
    assert replayed.u2a["test_users"] == 3  # acc_max_users
    assert replayed.table["chance@4"]["chance"]["value"] == 0.25


def test_u2a_rows_carry_intervals_and_a_chance_level_champion_is_said_first(replayed):
    from mspa_tasks.replay.u2a import chance_warnings

    rows = {(r["metric"], r["model"]): r for r in replayed.u2a["metrics"]}
    for m in (4, 10):
        champ, als = rows[(f"acc@{m}", "mspa")], rows[(f"acc@{m}", "als")]
        assert champ["low"] <= champ["value"] <= champ["high"]
        assert als["diff"] == pytest.approx(als["value"] - champ["value"])
    expected = chance_warnings(replayed.u2a["champion"], [
        {"m": m, **rows[(f"acc@{m}", "mspa")]} for m in (4, 10)])
    assert replayed.u2a["warnings"] == expected
    assert set(expected) <= set(replayed.report["warnings"])


def test_the_champion_reranks_mspas_shortlist_and_every_list_is_scored_on_the_same_tips(
        replayed):
    """The two-stage rows (``rerank_part``): the reranked list (mspa), MSPA's own order
    (first_stage) and the fused score, popularity and ALS over the whole catalogue, on the
    same held-out tips."""
    from mspa_tasks.align.examples import read_examples
    from mspa_tasks.sampling import stable_sample

    two = replayed.u2a["two_stage"]
    rows = read_examples(replayed.store, DS, "rerank", (two["m"],))
    users = set(stable_sample({r["user_id"] for r in rows}, 3, f"{DS}:rerank"))
    rows = [r for r in rows if r["user_id"] in users]
    assert two["tips"] == len(rows) > 0 and two["users"] == len(users)
    in_top = [r["ground_truth"] in r["candidate_ids"] for r in rows]
    assert two["truth_in_shortlist"] == sum(in_top)
    metrics = {(r["metric"], r["model"]): r for r in replayed.u2a["metrics"]}
    own = [r["candidate_ids"].index(r["ground_truth"]) if t else -1
           for r, t in zip(rows, in_top, strict=True)]
    assert metrics["first_stage_hr@5", "mspa"]["value"] == pytest.approx(
        sum(0 <= k < 5 for k in own) / len(rows))
    assert metrics["first_stage_hr@1", "mspa"]["value"] == pytest.approx(own.count(0) / len(rows))
    for k in ("hr@1", "hr@5", "ndcg@5"):
        reranked = metrics[f"two_stage_{k}", "mspa"]
        # a reranker orders the shortlist; it cannot add an author MSPA did not retrieve
        assert reranked["value"] <= sum(in_top) / len(rows)
        for model in ("mspa", "fused", "popularity", "als"):
            r = metrics[f"two_stage_{k}", model]
            assert r["n"] == len(rows) and r["low"] <= r["value"] <= r["high"]
    assert [v.split(":")[0] for v in two["verdicts"]] == ["hr@1", "hr@5", "ndcg@5"]
    html = replayed.store.get_text(f"reports/replay/ds={DS}/report.html")
    assert "<b>Two-stage</b>" in html and "two_stage_hr@5" in html


def test_ann_parity_on_flat_finds_the_exact_top_k(replayed):
    by = {r["metric"]: r["value"] for r in replayed.ann["metrics"]}
    assert by["ann_recall"] == 1.0  # FLAT: Milvus returns the exact top K
    assert by["ann_hr_milvus"] == by["ann_hr_exact"]


def test_every_metric_has_mspa_and_both_baselines_side_by_side(replayed):
    table = replayed.table
    for metric in ("auc_click", "uauc_click", "auc_gift", "uauc_gift", "hr@10", "hr@1000",
                   "recall@5", "ndcg@10", "acc@4", "acc@10", "a2a_alignment"):
        assert set(table[metric]) >= {"mspa", "popularity", "als"}, metric
        for r in table[metric].values():
            assert r["value"] is None or 0.0 <= r["value"] <= 1.0
    assert table["hr@1000"]["mspa"]["value"] == 1.0  # K above the tiny catalogue


def test_the_replay_is_forward_scored_with_the_day_befores_artifacts(replayed):
    assert replayed.offline["model_day"] == replayed.report["model_day"] == D0
    assert replayed.report["artifacts"]["mspa"] == f"author and user vectors of {D0}"
    assert replayed.report["previous_ds"] is None  # nothing replayed before


def test_headline_rows_carry_an_interval_over_users_and_a_paired_verdict(replayed):
    for metric in ("auc_click", "uauc_click", "hr@10", "recall@5"):
        m, als = replayed.table[metric]["mspa"], replayed.table[metric]["als"]
        assert m["low"] <= m["value"] <= m["high"] and m["users"] > 0, metric
        assert als["diff"] == pytest.approx(als["value"] - m["value"])
        assert als["diff_low"] <= als["diff"] <= als["diff_high"]
        assert als["significant"] == (als["diff_low"] > 0 or als["diff_high"] < 0)


def test_each_segment_family_splits_the_scored_impressions(replayed):
    report, cov = replayed.report, replayed.offline["coverage"]
    counts = report["segment_counts"]
    for family in (("new_to_user", "repeat"), ("cold", "established"), ("head", "torso", "tail")):
        assert sum(counts[seg]["impressions"] for seg in family) == cov["impressions_scored"]
    segs = {(r["segment"], r["metric"], r["model"]): r for r in report["segments"]}
    hr = f"hr@{replayed.settings.replay.hr_ks[0]}"
    split = [segs[(s, hr, "mspa")]["n"] for s in ("new_to_user", "repeat")
             if (s, hr, "mspa") in segs]
    assert 0 < max(split) and sum(split) >= cov["requests_with_watched"]


def test_the_segments_table_as_markdown_has_one_line_per_segment_row(replayed):
    from mspa_tasks.replay import segments_markdown

    hr = f"hr@{replayed.settings.replay.hr_ks[0]}"
    md = segments_markdown(replayed.report, (hr,)).splitlines()
    assert md[0].startswith("| segment | metric | mspa |")
    body = [line for line in md[2:] if f"| {hr} |" in line]
    segments = {r["segment"] for r in replayed.report["segments"] if r["metric"] == hr}
    assert len(body) == len(segments) > 0


def test_the_html_report_has_its_tables_plots_and_catalogue_caveat_and_is_listed(replayed):
    html = replayed.store.get_text(f"reports/replay/ds={DS}/report.html")
    assert '<table id="metrics">' in html and '<table id="segments">' in html
    assert html.count("data:image/png;base64,") == 3
    assert "HR@K for K &ge;" in html  # the catalogue-size caveat is spelled out
    assert replay.list_reports(replayed.store, replayed.settings) == [DS]


def test_replay_metrics_rows_are_the_reports_and_a_rerun_replaces_them(replayed):
    rows = replayed.rows
    assert len(rows) == sum(len(v) for v in replayed.table.values())
    assert ("auc_click", "als", "baseline") == rows[[r[:2] for r in rows].index(
        ("auc_click", "als"))][:3]
    assert _rows(replayed.url, DS) == rows  # after the rerun: replaced, nothing duplicated


def test_delta_and_trend_use_the_previous_replayed_day(day, tmp_path):
    url, store, settings = day
    offline = replay.replay_offline(DayRun(DS, settings, store, url))
    for part in ("u2a", "ann"):  # parts with nothing to say still make a complete report
        replay.write_part(store, settings, DS, part, {"metrics": [], "note": "test"})
    yesterday = (dt.date.fromisoformat(DS) - dt.timedelta(days=1)).isoformat()
    earlier = [dict(r, value=0.5) for r in offline["metrics"]]
    replay.record_metrics(url, yesterday, earlier, {})
    report = replay.publish_report(DayRun(DS, settings, store, url)).report
    assert report["previous_ds"] == yesterday
    auc = report["metrics"]["auc_click"]["mspa"]
    assert auc["previous"] == 0.5 and auc["delta"] == pytest.approx(auc["value"] - 0.5)
    assert {r["ds"] for r in report["trend"]} == {yesterday, DS}


def test_replay_of_an_unpublished_day_names_what_to_run(day):
    url, store, settings = day
    with pytest.raises(InputsMissing, match="run mspa_daily for 2026-11-21"):
        replay.replay_offline(DayRun("2026-11-21", settings, store, url))


def test_report_with_a_missing_part_names_the_task_and_writes_nothing(day):
    url, store, settings = day
    replay.replay_offline(DayRun(DS, settings, store, url))
    with pytest.raises(replay.ReportIncomplete, match="part 'u2a'.*rerun the replay task 'u2a'"):
        replay.publish_report(DayRun(DS, settings, store, url))
    assert replay.list_reports(store, settings) == []


@pytest.mark.postgres
def test_replay_metrics_on_postgres(pg_url):
    rows = [replay.row("auc_click", "mspa", 0.61, 100),
            replay.row("auc_click", "als", float("nan"), 100)]
    replay.record_metrics(pg_url, DS, rows, {"mspa": "v1"})
    replay.record_metrics(pg_url, DS, rows, {"mspa": "v1"})  # replaced, not duplicated
    got = replay.history(pg_url, DS, DS)
    assert [(r["metric"], r["model"], r["kind"], r["value"], r["model_version"]) for r in got] \
        == [("auc_click", "als", "baseline", None, ""), ("auc_click", "mspa", "mspa", 0.61, "v1")]


def test_summary_text_lines_up_models():
    report = {"models": ["mspa", "popularity", "als"],
              "metrics": {"auc_click": {m: {"value": v, "n": 10} for m, v in
                                        (("mspa", 0.6), ("popularity", 0.5), ("als", 0.7))}}}
    assert replay.summary_text(report).splitlines()[1].split() == ["auc_click", "0.6000", "0.5000",
                                                              "0.7000", "10"]


def test_a_day_d_interaction_cannot_change_the_forward_replay_of_d(day, encoder):
    """Forward replay: plant tips on DS alone (20 users tip one author: within the quality
    gate's volume band), republish DS's sessions, texts and vectors: DS's replay is unchanged, to the last
    digit, because it scores with D0's artifacts. (Scoring with DS's own artifacts, the
    popularity baseline would move at once.)"""
    url, store, settings = day
    settings = settings.replaced(replay={"bootstrap": 50})
    before = replay.replay_offline(DayRun(DS, settings, store, url))
    sessions_before = store.get_bytes(f"sessions/ds={DS}/manifest.json")
    engine = sa.create_engine(url)
    end = window_for(DS, 1).end_ms
    with engine.begin() as conn:
        top = conn.execute(sa.text("SELECT MAX(load_seq), MAX(event_id) FROM tip_events")).one()
        users = [u for (u,) in conn.execute(sa.text("SELECT DISTINCT user_id FROM tip_events "
                                                    "WHERE user_id IS NOT NULL"))]
        (author,) = conn.execute(sa.text("SELECT MIN(author_id) FROM authors")).one()
        conn.execute(sa.text(
            "INSERT INTO tip_events (load_seq, event_id, user_id, author_id, live_id, ts, "
            "amount, ingested_at) VALUES (:s, :e, :u, :a, 1, :t, 5.0, :t)"),
            [{"s": top[0] + i + 1, "e": top[1] + i + 1, "u": u, "a": author,
              "t": end - 3_600_000 - i} for i, u in enumerate(users[:20])])
    engine.dispose()
    publish_day(DS, url, store, settings, encoder)
    assert store.get_bytes(f"sessions/ds={DS}/manifest.json") != sessions_before  # it moved
    after = replay.replay_offline(DayRun(DS, settings, store, url))
    assert after["model_day"] == D0
    assert after["metrics"] == before["metrics"] and after["segments"] == before["segments"]


def test_the_first_day_has_nothing_to_replay_forward_and_says_so(day):
    url, store, settings = day
    part = replay.replay_offline(DayRun(D0, settings, store, url))
    assert part["metrics"] == [] and "nothing is published before 2026-11-19" in part["note"]

