"""The MSPA reports page, served by a real `airflow api-server` with the plugin loaded,
checked over HTTP (auth) and in headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mspa_tasks.run import DayRun
from tests.conftest import REPO, _free_port

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
BIN = Path(sys.executable).parent
DS, YESTERDAY = "2026-11-20", "2026-11-19"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT_DIR = Path(os.environ.get("MSPA_SCREENSHOTS", REPO / "var" / "screenshots"))


def _write_reports(home: Path) -> None:
    """Two days of reports written by the real report code from hand-made parts."""
    from mspa_tasks import replay
    from mspa_tasks.artifacts import open_store
    from mspa_tasks.config import load_settings

    settings = load_settings("local", home=home)
    store = open_store(settings.artifacts_uri)
    values = {"mspa": 0.61, "popularity": 0.49, "als": 0.68}
    for i, ds in enumerate((YESTERDAY, DS)):
        rows = [replay.row(m, model, v + 0.01 * i, 1118) for m in
                ("auc_click", "uauc_click", "auc_gift", "hr@10", "hr@1000")
                for model, v in values.items()]
        acc = [replay.row("acc@4", model, v - 0.2, 40) for model, v in values.items()]
        for part, metrics in (("offline", rows), ("u2a", acc), ("ann", [])):
            replay.write_part(store, settings, ds, part, {"metrics": metrics, "champion": "r1"}
                            if part == "u2a" else {"metrics": metrics, "n_authors": 384,
                                                   "coverage": {"impressions": 1590}})
        replay.publish_report(DayRun(ds, settings, store, settings.warehouse_url))


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("ui")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"analyst": "s3cret-pw"}))
    env = {**os.environ, "AIRFLOW_HOME": str(home / "airflow"), "MSPA_HOME": str(home / "mspa"),
           "MSPA_ENV": "local",
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "analyst:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False"}
    migrated = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env,
                              capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    _write_reports(home / "mspa")
    port = _free_port()
    log = open(home / "api-server.log", "w")
    proc = subprocess.Popen([str(BIN / "airflow"), "api-server", "-p", str(port), "-H",
                             "127.0.0.1", "-w", "1"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("api-server did not start:\n"
                                + (home / "api-server.log").read_text()[-3000:])
                time.sleep(1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _token(base: str, password: str = "s3cret-pw") -> tuple[int, str]:
    req = urllib.request.Request(f"{base}/auth/token", method="POST",
                                 data=json.dumps({"username": "analyst",
                                                  "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())["access_token"]
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_page_sits_behind_airflow_login(api_server):
    status, headers, _ = _get(f"{api_server}/mspa-reports/", {"Accept": "text/html"})
    assert status == 303 and "/auth/login?next=" in headers["location"]  # a browser: login
    assert _get(f"{api_server}/mspa-reports/api/reports")[0] == 401       # an API client
    assert _get(f"{api_server}/mspa-reports/api/reports",
                {"Authorization": "Bearer not-a-token"})[0] == 403
    assert _get(f"{api_server}/mspa-reports/report/{DS}", {"Cookie": "_token=forged"})[0] == 403
    assert _token(api_server, "wrong")[0] == 401
    for path in ("docs", "openapi.json", "redoc"):  # FastAPI's own pages: not served at all
        assert _get(f"{api_server}/mspa-reports/{path}")[0] in (401, 404), path

    status, token = _token(api_server)
    assert status == 201
    auth = {"Authorization": f"Bearer {token}"}
    status, _, body = _get(f"{api_server}/mspa-reports/api/reports", auth)
    assert status == 200
    listed = json.loads(body)
    assert [r["ds"] for r in listed] == [DS, YESTERDAY]
    assert listed[0]["headline"]["auc_click"] == pytest.approx(
        {"mspa": 0.62, "popularity": 0.5, "als": 0.69})
    assert _get(f"{api_server}/mspa-reports/report/2026-13-01", auth)[0] == 404
    assert _get(f"{api_server}/mspa-reports/report/..%2F..%2Fetc", auth)[0] == 404
    assert _get(f"{api_server}/mspa-reports/report/2026-01-01", auth)[0] == 404

    # the navigation link is registered with the UI
    status, _, body = _get(f"{api_server}/api/v2/plugins", auth)
    assert status == 200
    views = [v for p in json.loads(body)["plugins"] for v in p["external_views"]]
    assert {"name": "MSPA reports", "href": "mspa-reports/", "url_route": "mspa-reports",
            "destination": "nav"}.items() <= next(v for v in views
                                                  if v["name"] == "MSPA reports").items()


def test_page_in_headless_chromium_shows_the_report_table(api_server):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: `make browser`"
    _, token = _token(api_server)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(f"{api_server}/mspa-reports/")  # no session: Airflow's login page
            assert "/auth/login" in page.url

            context.add_cookies([{"name": "_token", "value": token, "url": api_server}])
            page.goto(f"{api_server}/mspa-reports/")
            assert page.locator("#reports tbody tr").count() == 2
            page.click(f"text={DS}")
            page.wait_for_selector("#metrics")
            rows = page.locator("#metrics tbody tr")
            text = page.locator("#metrics").inner_text()
            assert "auc_click" in text and "0.6200" in text and "+0.0100" in text
            assert rows.count() >= 7
            assert page.locator("img").count() == 3
            page.screenshot(path=str(SCREENSHOT_DIR / "mspa-report.png"), full_page=True)

            page.goto(f"{api_server}/plugin/mspa-reports")  # inside the Airflow UI
            frame = page.frame_locator("iframe").first
            frame.locator("#reports").wait_for(timeout=60_000)
            page.screenshot(path=str(SCREENSHOT_DIR / "mspa-reports-in-airflow.png"))
        finally:
            browser.close()


def test_the_list_page_escapes_what_report_files_carry():
    from mspa_airflow.reports_ui import _list_page

    page = _list_page([{"ds": "2026-11-20", "report": {
        "champion": "<script>alert(1)</script>",
        "metrics": {"auc_click": {"mspa": {"value": 0.81234}, "als": {"value": None}}}}}])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<td class='num'>0.8123 / -</td>" in page
    assert "<a href='report/2026-11-20'>2026-11-20</a>" in page
    assert "No replay report yet" in _list_page([])


def test_one_corrupt_report_is_listed_as_unreadable_and_the_others_still_show(tmp_path,
                                                                               monkeypatch):
    """The app in process (its login is checked against a real api-server above): a
    truncated report.json is one row saying so, never a 500 for every reader."""
    from fastapi.testclient import TestClient

    from mspa_airflow.reports_ui import create_app, require_user
    from mspa_tasks.config import load_settings
    from mspa_tasks.replay.results import REPORT_JSON, report_prefix

    home = tmp_path / "mspa"
    monkeypatch.setenv("MSPA_HOME", str(home))
    monkeypatch.setenv("MSPA_ENV", "local")
    _write_reports(home)
    settings = load_settings("local", home=home)
    broken = home / "artifacts" / report_prefix(settings, YESTERDAY) / REPORT_JSON
    broken.write_bytes(broken.read_bytes()[:100])
    app = create_app()
    app.dependency_overrides[require_user] = lambda: "analyst"
    client = TestClient(app)

    page = client.get("/")
    assert page.status_code == 200
    assert f"<a href='report/{DS}'>{DS}</a>" in page.text
    assert f"<td>{YESTERDAY}</td>" in page.text and "unreadable: " in page.text
    listed = client.get("/api/reports")
    assert listed.status_code == 200
    by_day = {r["ds"]: r for r in listed.json()}
    assert by_day[DS]["headline"] and "is not a readable report" in by_day[YESTERDAY]["error"]
    assert client.get(f"/api/reports/{YESTERDAY}").status_code == 422
    assert client.get(f"/api/reports/{DS}").status_code == 200
