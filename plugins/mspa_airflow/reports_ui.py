"""The **MSPA reports** page of the Airflow UI: replay reports by date, read from the
artifact store (never from the milvus-lite file, which a long-lived process must not hold).

A FastAPI app mounted by the Airflow 3 plugin :mod:`mspa_reports_plugin` under
``/mspa-reports``, with a navigation link (an external view). Airflow does **not**
authenticate plugin apps (checked on the pinned 3.3.2: a mounted Starlette app inherits none
of the core API's dependencies), so every route here requires Airflow's own user: the JWT of
the UI session cookie or an ``Authorization: Bearer`` token, validated by Airflow's auth
manager, and the auth manager's permission for this custom view. A browser without a session
is redirected to Airflow's login page; an API client gets 401.

Routes: ``/`` (the list), ``/report/{ds}`` (one report's HTML), ``/api/reports`` and
``/api/reports/{ds}`` (JSON).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

log = logging.getLogger(__name__)

URL_PREFIX = "/mspa-reports"
VIEW_NAME = "MSPA reports"
TEMPLATES = Path(__file__).parent / "templates"
HEADLINE = ("hr@1000", "auc_click", "uauc_click", "auc_gift", "acc@4", "acc@10")


class LoginRequired(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code, self.detail = status_code, detail


async def require_user(request: Request) -> Any:
    """Airflow's authenticated user with permission for this view, or :class:`LoginRequired`."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    try:
        user = await get_user(request, None, credentials)
    except HTTPException as exc:
        raise LoginRequired(exc.status_code, str(exc.detail)) from exc
    allowed = get_auth_manager().is_authorized_custom_view(method="GET", resource_name=VIEW_NAME,
                                                           user=user)
    if not allowed:
        raise LoginRequired(403, f"not allowed to view {VIEW_NAME}")
    return user


def _valid_ds(ds: str) -> str:
    try:
        if dt.date.fromisoformat(ds).isoformat() == ds:
            return ds
    except ValueError:
        pass
    raise HTTPException(status_code=404, detail=f"no report for {ds!r} (dates are YYYY-MM-DD)")


def _context():
    from mspa_airflow.hooks import artifact_store
    from mspa_tasks.config import load_settings

    settings = load_settings()
    return settings, artifact_store(settings)


def _value(report: dict[str, Any], metric: str, model: str) -> str:
    r = report.get("metrics", {}).get(metric, {}).get(model)
    return "-" if not r or r.get("value") is None else f"{r['value']:.4f}"


@cache
def _templates():
    import jinja2

    # Autoescape: dates, champion names and figures come from report files in the store.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _list_page(rows: list[dict[str, Any]]) -> str:
    """The reports list, from ``templates/reports_list.html.j2``."""
    return _templates().get_template("reports_list.html.j2").render(
        title=VIEW_NAME, headline=HEADLINE,
        rows=[{"ds": r["ds"], "error": r["error"]} if r.get("error") else
              {"ds": r["ds"], "error": None, "champion": str(r["report"].get("champion") or ""),
               "values": [(_value(r["report"], m, "mspa"), _value(r["report"], m, "als"))
                          for m in HEADLINE]} for r in rows])


def create_app() -> FastAPI:
    # No /docs, /redoc or /openapi.json: FastAPI adds those outside the app's dependencies,
    # so they would be the one anonymous door into the page.
    app = FastAPI(title=VIEW_NAME, description=__doc__, dependencies=[Depends(require_user)],
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        from airflow.api_fastapi.app import get_auth_manager

        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and exc.status_code == 401:
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)),
                                    status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    def _reports() -> list[dict[str, Any]]:
        """Every day's report; a day whose report cannot be read is listed with why, and
        never takes the other days down with it."""
        from mspa_tasks.replay.results import ReportUnreadable, list_reports, read_report

        settings, store = _context()
        rows = []
        for ds in list_reports(store, settings):
            try:
                rows.append({"ds": ds, "report": read_report(store, settings, ds),
                             "error": None})
            except ReportUnreadable as exc:
                log.warning("replay report of %s unreadable: %s", ds, exc)
                rows.append({"ds": ds, "report": None, "error": str(exc)})
        return rows

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return _list_page(await asyncio.to_thread(_reports))

    @app.get("/report/{ds}", response_class=HTMLResponse)
    async def report_page(ds: str) -> str:
        from mspa_tasks.artifacts import ArtifactNotFound
        from mspa_tasks.replay.results import REPORT_HTML, report_prefix

        def read() -> str:
            settings, store = _context()
            return store.get_text(f"{report_prefix(settings, _valid_ds(ds))}/{REPORT_HTML}")

        try:
            page = await asyncio.to_thread(read)
        except ArtifactNotFound as exc:
            raise HTTPException(status_code=404, detail=f"no report for {ds}") from exc
        # the stored report is self-contained; in the UI it gets a way back to the list
        return page.replace("<body>", '<body><p><a href="../">&larr; all reports</a></p>', 1)

    @app.get("/api/reports")
    async def api_list() -> list[dict[str, Any]]:
        return [{"ds": r["ds"], "error": r["error"]} if r["error"] else
                {"ds": r["ds"], "champion": r["report"].get("champion"),
                 "headline": {m: {k: v.get("value") for k, v in
                                  r["report"].get("metrics", {}).get(m, {}).items()}
                              for m in HEADLINE}}
                for r in await asyncio.to_thread(_reports)]

    @app.get("/api/reports/{ds}")
    async def api_report(ds: str) -> dict[str, Any]:
        from mspa_tasks.artifacts import ArtifactNotFound
        from mspa_tasks.replay.results import ReportUnreadable, read_report

        def read() -> dict[str, Any]:
            settings, store = _context()
            return read_report(store, settings, _valid_ds(ds))

        try:
            return await asyncio.to_thread(read)
        except ArtifactNotFound as exc:
            raise HTTPException(status_code=404, detail=f"no report for {ds}") from exc
        except ReportUnreadable as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    return app
