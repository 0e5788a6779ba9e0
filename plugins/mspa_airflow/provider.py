"""Provider metadata, found by Airflow through the ``apache_airflow_provider`` entry point in
``pyproject.toml``: it registers the connection types, so that the UI's connection form
offers "MSPA Milvus" (URI, token, database) and "MSPA warehouse"."""

from __future__ import annotations


def get_provider_info() -> dict:
    return {
        "package-name": "mspa-pipeline",
        "name": "MSPA pipeline",
        "description": "Connections of the MSPA pipeline: its warehouse and its Milvus.",
        "connection-types": [
            {
                "connection-type": "mspa_milvus",
                "hook-class-name": "mspa_airflow.hooks.MilvusHook",
                "hook-name": "MSPA Milvus",
                # Declarative form (Airflow >= 3.2): the host field carries the URI.
                "ui-field-behaviour": {
                    "hidden-fields": ["port", "login", "extra"],
                    "relabeling": {"host": "URI", "password": "Token", "schema": "Database"},
                    "placeholders": {"host": "http://milvus:19530 or /data/milvus.db",
                                     "password": "user:password or an API key",
                                     "schema": "default"},
                },
            },
            {
                "connection-type": "mspa_warehouse",
                "hook-class-name": "mspa_airflow.hooks.WarehouseHook",
                "hook-name": "MSPA warehouse",
                "ui-field-behaviour": {
                    "relabeling": {"schema": "Database"},
                    "placeholders": {"extra": '{"sqlalchemy_driver": "postgresql+psycopg2"}'},
                },
            },
        ],
    }
