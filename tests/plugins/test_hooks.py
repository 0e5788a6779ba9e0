from __future__ import annotations

import pytest
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from mspa_airflow.hooks import MilvusHook, WarehouseHook, artifact_store
from mspa_tasks.config import load_settings


@pytest.mark.parametrize(("conn", "url"), [
    (Connection(conn_id="w", conn_type="postgres", host="db.internal", port=5432,
                login="etl", password="s3cr3t", schema="dw"),
     "postgresql+psycopg2://etl:s3cr3t@db.internal:5432/dw"),
    (Connection(conn_id="w", conn_type="sqlite", host="/data/w.db"), "sqlite:////data/w.db"),
    # a '#' would end the URL's path: the file would be /data/a
    (Connection(conn_id="w", conn_type="sqlite", host="/data/a#b/w.db"),
     "sqlite:////data/a%23b/w.db"),
    (Connection(conn_id="w", conn_type="generic", host="trino", port=8080, login="u",
                schema="hive", extra='{"sqlalchemy_driver": "trino"}'),
     "trino://u@trino:8080/hive"),
])
def test_url_from_connection(conn, url):
    assert WarehouseHook.url_from_connection(conn) == url


def test_unknown_conn_type_says_how_to_fix():
    conn = Connection(conn_id="w", conn_type="oracle", host="h")
    with pytest.raises(ValueError, match="extra.sqlalchemy_driver"):
        WarehouseHook.url_from_connection(conn)


def test_connection_from_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_MSPA_WAREHOUSE", f"sqlite:///{tmp_path}/other.db")
    hook = WarehouseHook(settings=load_settings("local", home=tmp_path))
    assert hook.get_sqlalchemy_url().endswith("/other.db")


def test_local_falls_back_to_the_credential_free_file(tmp_path):
    hook = WarehouseHook(settings=load_settings("local", home=tmp_path))
    assert hook.get_sqlalchemy_url() == f"sqlite:///{tmp_path}/warehouse.db"


def test_prod_without_connection_is_a_clear_error(tmp_path):
    hook = WarehouseHook(settings=load_settings("prod", home=tmp_path))
    with pytest.raises(AirflowNotFoundException, match="airflow connections add mspa_warehouse"):
        hook.get_sqlalchemy_url()


def test_artifact_store_from_settings(tmp_path):
    store = artifact_store(load_settings("local", home=tmp_path))
    assert store.root_uri == f"file://{tmp_path}/artifacts"


def test_milvus_target_from_its_own_connection_type(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_CONN_MSPA_MILVUS", '{"conn_type": "mspa_milvus", '
                       '"host": "http://milvus.internal:19530", "password": "root:s3cr3t", '
                       '"schema": "recsys"}')
    target = MilvusHook(settings=load_settings("prod", home=tmp_path)).get_target()
    assert (target.uri, target.token, target.db_name) == (
        "http://milvus.internal:19530", "root:s3cr3t", "recsys")
    assert "s3cr3t" not in repr(target) and not target.is_lite


def test_milvus_local_falls_back_to_the_lite_file(tmp_path):
    target = MilvusHook(settings=load_settings("local", home=tmp_path)).get_target()
    assert target.uri == f"{tmp_path}/milvus.db" and target.is_lite and not target.token


def test_milvus_prod_without_connection_says_how_to_add_it(tmp_path):
    hook = MilvusHook(settings=load_settings("prod", home=tmp_path))
    with pytest.raises(AirflowNotFoundException, match="--conn-type mspa_milvus"):
        hook.get_target()


def test_connection_types_are_registered_with_airflow():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks["mspa_milvus"]
    assert hook.hook_class_name == "mspa_airflow.hooks.MilvusHook"
    # What the UI's connection form uses (declared in mspa_airflow/provider.py).
    behaviour = ProvidersManager().field_behaviours["mspa_milvus"]
    assert behaviour["relabeling"]["host"] == "URI"
