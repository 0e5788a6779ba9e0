"""The provider metadata that gives the UI's connection form our two connection types
(mspa_airflow.provider)."""

from __future__ import annotations

import importlib

from mspa_airflow.provider import get_provider_info


def test_each_connection_type_names_a_hook_of_that_type():
    types = get_provider_info()["connection-types"]
    assert [t["connection-type"] for t in types] == ["mspa_milvus", "mspa_warehouse"]
    for entry in types:
        module, _, name = entry["hook-class-name"].rpartition(".")
        hook = getattr(importlib.import_module(module), name)
        assert hook.conn_type == entry["connection-type"]
        assert hook.hook_name == entry["hook-name"]


def test_the_provider_is_registered_by_the_installed_package():
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group="apache_airflow_provider")
             if e.value.startswith("mspa_airflow.provider")]
    assert len(found) == 1 and found[0].load() is get_provider_info
