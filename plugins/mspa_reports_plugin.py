"""Airflow 3 plugin: the **MSPA reports** page (replay reports by date) in the UI's navigation.

The page is a FastAPI app (:mod:`mspa_airflow.reports_ui`) mounted at ``/mspa-reports`` on the
API server, behind Airflow's own login; the external view adds the navigation link and shows
the page inside the UI.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mspa_airflow.reports_ui import URL_PREFIX, VIEW_NAME, create_app


class MspaReportsPlugin(AirflowPlugin):
    name = "mspa_reports"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": VIEW_NAME}]
    external_views = [{
        "name": VIEW_NAME,
        "href": URL_PREFIX.lstrip("/") + "/",   # relative: works behind a path prefix too
        "url_route": "mspa-reports",
        "destination": "nav",
        "category": "browse",
    }]
