"""Airflow Assets from the dataset catalog (mspa_airflow.assets)."""

from __future__ import annotations

import pytest

from mspa_airflow.assets import GROUP, catalog_asset, catalog_assets
from mspa_tasks.datasets import CATALOG


def test_every_catalog_dataset_has_its_asset_named_and_addressed_by_the_catalog():
    assets = catalog_assets(*CATALOG)
    assert [a.name for a in assets] == [CATALOG[n].asset_name for n in CATALOG]
    # Airflow normalises a URI with an empty path to end in "/"
    assert [a.uri.rstrip("/") for a in assets] == [CATALOG[n].asset_uri for n in CATALOG]
    assert len({a.uri for a in assets}) == len(CATALOG) and {a.group for a in assets} == {GROUP}
    assert all(a.extra["producer"] for a in assets)


def test_an_unknown_dataset_has_no_asset():
    with pytest.raises(KeyError):
        catalog_asset("author_vector")
