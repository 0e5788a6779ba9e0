"""Airflow Assets derived from the dataset catalog (``mspa_tasks.datasets``): one Asset per
dataset, named ``mspa_<dataset>`` with the URI ``mspa://<dataset>``, so a task's ``outlets``
and ``inlets`` say in the UI what it publishes and reads, from the same declaration the
library checks schemas against."""

from __future__ import annotations

from airflow.sdk import Asset

from mspa_tasks.datasets import CATALOG

GROUP = "mspa"


def catalog_asset(name: str) -> Asset:
    """The Asset of the catalog's dataset ``name``."""
    dataset = CATALOG[name]
    return Asset(name=dataset.asset_name, uri=dataset.asset_uri, group=GROUP,
                 extra={"producer": str(dataset.producer)})


def catalog_assets(*names: str) -> list[Asset]:
    return [catalog_asset(n) for n in names]
