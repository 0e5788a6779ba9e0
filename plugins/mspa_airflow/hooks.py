"""Hooks own connections: credentials come only from Airflow connections (or the secrets
backend behind them) and never from settings files or code.

``MilvusHook`` gives the vector store's target (URI, token, database) from its own
connection type ``mspa_milvus``. ``WarehouseHook`` builds a SQLAlchemy URL from the connection named in settings
(``warehouse_conn_id``). On the embedded default the connection may be absent; then the
settings' credential-free local URL (a SQLite file) is used. In ``prod`` an absent
connection is an error that says how to create it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mspa_tasks.artifacts import URI_SAFE, ArtifactStore, open_store
from mspa_tasks.config import Settings, load_settings
from mspa_tasks.vector_store import MilvusTarget

log = logging.getLogger(__name__)

# Airflow conn_type -> SQLAlchemy driver name; override with extra {"sqlalchemy_driver": ...}.
DRIVERS = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2",
           "sqlite": "sqlite", "mysql": "mysql+pymysql", "trino": "trino", "hive": "hive"}


class _SettingsHook(BaseHook):
    """A hook whose connection is optional on the embedded default (settings name it)."""

    def __init__(self, settings: Settings | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings or load_settings()

    def optional_connection(self, conn_id: str) -> Any | None:
        """The connection ``conn_id``, or None when it is unnamed or not defined."""
        if not conn_id:
            return None
        try:
            return self.get_connection(conn_id)
        except AirflowNotFoundException:
            return None


class WarehouseHook(_SettingsHook):
    """Resolves the warehouse's SQLAlchemy URL from an Airflow connection."""

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "mspa_warehouse"
    conn_type = "mspa_warehouse"
    hook_name = "MSPA warehouse"

    def get_sqlalchemy_url(self) -> str:
        conn_id = self.settings.warehouse_conn_id
        conn = self.optional_connection(conn_id)
        if conn is not None:
            url = self.url_from_connection(conn)
            log.info("warehouse: connection %s -> %s", conn_id, _hidden(url))
            return url
        if self.settings.env == "local" and self.settings.warehouse_url:
            return self.settings.warehouse_url
        raise AirflowNotFoundException(
            f"warehouse connection {conn_id!r} is not defined (env={self.settings.env}). "
            f"Create it, e.g. `airflow connections add {conn_id} --conn-type postgres "
            "--conn-host HOST --conn-login USER --conn-password ... --conn-schema DB`.")

    @staticmethod
    def url_from_connection(conn: Any) -> str:
        import sqlalchemy as sa

        extra = conn.extra_dejson or {}
        driver = extra.get("sqlalchemy_driver") or DRIVERS.get(conn.conn_type or "")
        if not driver:
            raise ValueError(f"connection {conn.conn_id!r} has conn_type {conn.conn_type!r}; "
                             "set extra.sqlalchemy_driver to its SQLAlchemy driver name")
        if driver == "sqlite":
            # a '#', '?' or '%' in the file's path would end or escape the URL's path
            return f"sqlite:///{quote(conn.host or conn.schema or '', safe=URI_SAFE)}"
        url = sa.URL.create(driver, username=conn.login or None, password=conn.password or None,
                            host=conn.host or None, port=conn.port or None,
                            database=conn.schema or None)
        rendered = url.render_as_string(hide_password=False)
        if conn.password:
            # Airflow masks conn.password as given; the URL carries it percent-encoded, which
            # the masker would not recognise in a driver's error message: mask both forms.
            from airflow.sdk.log import mask_secret

            mask_secret(rendered)
            mask_secret(rendered.split("://", 1)[1].split("@", 1)[0].partition(":")[2])
        return rendered


def _hidden(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)


def artifact_store(settings: Settings | None = None) -> ArtifactStore:
    """The artifact store of ``settings``; for ``s3://`` its boto3 client comes from the
    Airflow AWS connection ``artifacts_conn_id`` (amazon provider's S3Hook)."""
    settings = settings or load_settings()
    if settings.artifacts_uri.startswith("s3://") and settings.artifacts_conn_id:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        client = S3Hook(aws_conn_id=settings.artifacts_conn_id).get_conn()
        return open_store(settings.artifacts_uri, s3_client=client)
    return open_store(settings.artifacts_uri)


class MilvusHook(_SettingsHook):
    """Resolves where the author vectors live: Milvus standalone/distributed (URI, token,
    database in the connection ``vectors.milvus_conn_id``) or, on the embedded default
    without that connection, the settings' milvus-lite file."""

    conn_name_attr = "milvus_conn_id"
    default_conn_name = "mspa_milvus"
    conn_type = "mspa_milvus"
    hook_name = "MSPA Milvus"

    def get_target(self) -> MilvusTarget:
        conn_id = self.settings.vectors.milvus_conn_id
        conn = self.optional_connection(conn_id)
        if conn is not None:
            return self.target_from_connection(conn)
        if self.settings.env == "local" and self.settings.vectors.milvus_uri:
            return MilvusTarget(uri=self.settings.vectors.milvus_uri)
        raise AirflowNotFoundException(
            f"Milvus connection {conn_id!r} is not defined (env={self.settings.env}). Create "
            f"it, e.g. `airflow connections add {conn_id} --conn-type mspa_milvus "
            "--conn-host http://milvus:19530 --conn-password TOKEN --conn-schema default`.")

    @staticmethod
    def target_from_connection(conn: Any) -> MilvusTarget:
        if not conn.host:
            raise ValueError(f"connection {conn.conn_id!r} has no URI (host field)")
        return MilvusTarget(uri=conn.host, token=conn.password or "", db_name=conn.schema or "")
