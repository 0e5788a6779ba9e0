from __future__ import annotations

import pytest
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from mspa_airflow.hooks import WarehouseHook, artifact_store
from mspa_tasks.config import load_settings


@pytest.mark.parametrize(("conn", "url"), [
    (Connection(conn_id="w", conn_type="postgres", host="db.internal", port=5432,
                login="etl", password="s3cr3t", schema="dw"),
     "postgresql+psycopg2://etl:s3cr3t@db.internal:5432/dw"),
    (Connection(conn_id="w", conn_type="sqlite", host="/data/w.db"), "sqlite:////data/w.db"),
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
