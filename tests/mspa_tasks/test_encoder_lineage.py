"""Which encoder may score which day, and the fused weight of a day's vectors
(mspa_tasks.encoder_lineage)."""

from __future__ import annotations

import pytest

from mspa_tasks import registry as R
from mspa_tasks.artifacts import open_store
from mspa_tasks.datasets import ENCODER_ALIGNMENT
from mspa_tasks.encoder_lineage import EncoderLeak, check_encoder_before, fusion_weight


def _encoder(url: str, version: str, ds: str | None) -> None:
    R.prepare_registry(url)
    R.register(url, R.ModelVersion(version, ds, None, f"file:///enc/{version}", version,
                                   "champion", "test", {}), R.ENCODER_REGISTRY)


def test_an_encoder_aligned_on_the_replayed_day_or_later_may_not_score_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _encoder(url, "enc-1119", "2026-11-19")
    check_encoder_before(url, "enc-1119", "2026-11-20")  # aligned before: allowed
    check_encoder_before(url, "packaged:all-minilm-l6-v2", "2026-11-19")  # not aligned at all
    for ds in ("2026-11-19", "2026-11-18"):
        with pytest.raises(EncoderLeak, match="aligned on the interactions of 2026-11-19"):
            check_encoder_before(url, "enc-1119", ds)


def test_the_fused_weight_comes_from_the_model_days_alignment_or_says_why_not(tmp_path):
    store = open_store(f"file://{tmp_path / 'artifacts'}")
    assert fusion_weight(store, "2026-11-19", "enc-1") == (
        None, "no encoder alignment on 2026-11-19")
    tables = {name: schema.empty_table() for name, schema in ENCODER_ALIGNMENT.tables.items()}
    ENCODER_ALIGNMENT.publish(store, "2026-11-19", tables,
                              {"fusion_weights": {"enc-1": 0.7}, "validation_users": 12})
    weight, where = fusion_weight(store, "2026-11-19", "enc-1")
    assert weight == 0.7 and "12 validation users of 2026-11-19" in where
    assert fusion_weight(store, "2026-11-19", "enc-2") == (
        None, "the alignment of 2026-11-19 chose no weight for enc-2")
