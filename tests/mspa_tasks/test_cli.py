"""The command line reports what a user can fix in one line and a non-zero exit, never a
traceback: a bad ``--ds``, a day not published, a bad config value, a gate breach, a missing
source table, a milvus-lite file held by another process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from mspa_tasks.cli import main
from tests.conftest import REPO

DS = "2026-11-20"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mspa_tasks", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, toml, message", [
    (["ingest", "--ds", "2026-13-01"], None,
     "mspa: error: ds='2026-13-01' is not a date in YYYY-MM-DD form"),
    (["show-manifest", "--ds", "2020-01-01"], None, "manifest.json does not exist (is that day "
                                                    "published?)"),
    (["show-manifest", "--ds", DS], '[ingest]\nwindow_days = "30"\n',
     "mspa: error: setting ingest.window_days='30' is invalid: it must be an int"),
])
def test_expected_errors_print_one_line_and_exit_non_zero(tmp_path, args, toml, message):
    env = {"MSPA_HOME": str(tmp_path / "home")}
    if toml:
        (tmp_path / "bad.toml").write_text(toml)
        env["MSPA_CONFIG"] = str(tmp_path / "bad.toml")
    result = _cli(*args, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("mspa: error: ")
    assert message in result.stderr


def _free_port() -> int:
    from tests.conftest import _free_port as free

    return free()


@pytest.mark.parametrize("args, toml, env, message", [
    (["ingest", "--ds", "9999-12-31"], None, {}, "is outside the days this pipeline serves"),
    (["ingest", "--ds", "0001-01-01"], None, {}, "is outside the days this pipeline serves"),
    (["seed-world", "--preset", "tiny", "--end-ds", "DROP"], None, {},
     "ds='DROP' is not a date in YYYY-MM-DD form"),
    (["show-manifest", "--ds", DS, "--dataset", "../../../etc"], None, {},
     "no dataset '../../../etc' in the catalog; known: align_examples"),
    (["show-manifest", "--ds", DS], 'artifacts_uri = "s3://bucket/x"\n',
     {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
      "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"},
     "s3://bucket/x: no AWS credentials found"),
    (["show-manifest", "--ds", DS], 'artifacts_uri = "s3://bucket/x"\n',
     {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1",
      "AWS_ENDPOINT_URL": "http://127.0.0.1:{port}"}, "the S3 endpoint cannot be reached"),
    (["ingest", "--ds", DS], 'warehouse_url = "postgresql+pg8000://db/x"\n', {},
     "needs the driver module 'pg8000', which is not installed"),
    (["ingest", "--ds", DS], 'warehouse_url = "nosuchdb://db/x"\n', {},
     "SQLAlchemy has no dialect for it"),
    (["vectors", "list"], '[vectors]\nmilvus_uri = "http://127.0.0.1:{port}"\n', {},
     "could not be opened: Fail connecting to server"),
    (["vectors", "list"], '[vectors]\nmilvus_uri = "{home}/a-folder"\n', {},
     "a-folder could not be opened: uri: "),
    (["ingest", "--ds", DS], 'artifacts_uri = "file://var/artifacts"\n', {},
     "names the host 'var', so its files would land in '/artifacts'"),
    (["replay", "show", "--ds", DS], None, {}, "is not a readable report"),
])
def test_an_operators_mistake_is_one_line_never_a_traceback(tmp_path, args, toml, env,
                                                            message):
    from mspa_tasks.config import load_settings
    from mspa_tasks.replay.results import REPORT_JSON, report_prefix

    home = tmp_path / "home"
    (home / "a-folder").mkdir(parents=True)
    report = home / "artifacts" / report_prefix(load_settings("local", home=home), DS) / \
        REPORT_JSON
    report.parent.mkdir(parents=True)
    report.write_text('{"metrics": {"auc_cl')  # truncated mid-write
    port = str(_free_port())
    full_env = {"MSPA_HOME": str(home), **{k: v.replace("{port}", port) for k, v in env.items()}}
    if toml:
        (tmp_path / "bad.toml").write_text(toml.replace("{port}", port))
        full_env["MSPA_CONFIG"] = str(tmp_path / "bad.toml")
    result = _cli(*args, env=full_env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("mspa: error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr


@pytest.fixture
def seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("MSPA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MSPA_CONFIG", raising=False)
    assert main(["seed-world", "--preset", "tiny", "--end-ds", DS]) == 0
    return sa.create_engine(f"sqlite:///{tmp_path / 'home' / 'warehouse.db'}")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("mspa: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_gate_breach_and_a_missing_table_are_one_line_each(seeded, capsys):
    with seeded.begin() as conn:
        conn.execute(sa.text("DELETE FROM author_media"))
    capsys.readouterr()
    assert main(["ingest", "--ds", DS]) == 1
    line = _error_line(capsys)
    assert line.startswith(f"mspa: error: data-quality gate stopped ds={DS}: ")
    assert "kept_users FAILED: value 0, bound >= 10" in line and "; kept_authors FAILED" in line

    with seeded.begin() as conn:
        conn.execute(sa.text("DROP TABLE live_comments"))
    assert main(["ingest", "--ds", DS]) == 1
    assert "has no source table live_comments" in _error_line(capsys)
    seeded.dispose()


def test_a_held_milvus_lite_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MSPA_HOME", str(tmp_path / "home"))
    uri = tmp_path / "home" / "milvus.db"
    uri.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pymilvus import MilvusClient; "
         f"c = MilvusClient({str(uri)!r}); print('holding', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        capsys.readouterr()
        assert main(["vectors", "list"]) == 1
        line = _error_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert f"milvus-lite file {uri} could not be opened: another process most likely holds" in line


def test_config_prints_every_setting_in_effect(tmp_path, monkeypatch, capsys):
    import json

    override = tmp_path / "o.toml"
    override.write_text("[compose]\nn_shards = 8\n")
    monkeypatch.setenv("MSPA_CONFIG", str(override))
    monkeypatch.setenv("MSPA_HOME", str(tmp_path))
    assert main(["config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["compose"]["n_shards"] == 8            # the overlay
    assert shown["compose"]["batch_size"] == 16         # a default no file states
    assert shown["align"]["examples"]["max_train_users"] == 64      # local.toml
    assert shown["warehouse_url"] == f"sqlite:///{tmp_path}/warehouse.db"


def test_config_explain_is_the_settings_as_toml_each_with_its_meaning(monkeypatch, tmp_path,
                                                                     capsys):
    """`mspa config --explain` reads back as TOML equal to the settings in effect, and every
    setting line carries its description; `--explain align.grpo` is that table alone."""
    import tomllib

    from mspa_tasks.config import load_settings

    monkeypatch.setenv("MSPA_HOME", str(tmp_path))
    assert main(["config", "--explain"]) == 0
    text = capsys.readouterr().out
    dumped = load_settings().model_dump(mode="json")
    assert tomllib.loads(text) == {k: v for k, v in dumped.items() if v is not None}
    settings_lines = [line for line in text.splitlines() if " = " in line]
    assert settings_lines and all("  # " in line for line in settings_lines)
    assert main(["config", "--explain", "align.grpo"]) == 0
    grpo = capsys.readouterr().out
    assert grpo.splitlines()[0] == "[align.grpo]" and "[align.sft]" not in grpo
    assert tomllib.loads(grpo)["align"]["grpo"] == dumped["align"]["grpo"]
    assert main(["config", "--explain", "align.grp"]) == 2
    assert "no section [align.grp]; known: " in capsys.readouterr().err
