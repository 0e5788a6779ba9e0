from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel

from mspa_tasks.config import (
    ComposeConfig,
    ConfigError,
    EncoderAlignConfig,
    IngestConfig,
    QualityConfig,
    load_settings,
)


def test_local_settings_point_inside_home(tmp_path):
    s = load_settings("local", home=tmp_path)
    assert s.env == "local"
    assert s.warehouse_url == f"sqlite:///{tmp_path}/warehouse.db"
    assert s.artifacts_uri == f"file://{tmp_path}/artifacts"
    assert s.ingest.window_days == 30 and s.ingest.min_authors == 3


def test_prod_settings_carry_no_credentials(tmp_path):
    s = load_settings("prod", home=tmp_path)
    assert s.warehouse_url == "" and s.warehouse_conn_id == "mspa_warehouse"
    assert s.artifacts_uri.startswith("s3://") and s.artifacts_conn_id == "aws_default"
    # production's GPU path: bf16 and vLLM generating GRPO's groups on the training GPUs
    assert s.align.bf16 and s.align.grpo.use_vllm and s.align.grpo.vllm_mode == "colocate"


def test_env_is_picked_by_one_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("MSPA_ENV", "prod")
    assert load_settings(home=tmp_path).env == "prod"
    monkeypatch.setenv("MSPA_ENV", "staging")
    with pytest.raises(ConfigError, match=r"MSPA_ENV='staging' is invalid: .*local, prod"):
        load_settings(home=tmp_path)


@pytest.mark.parametrize(("cls", "kwargs", "message"), [
    (IngestConfig, {"window_days": 0}, r"ingest.window_days=0 is invalid"),
    (IngestConfig, {"min_authors": 0}, r"ingest.min_authors=0 is invalid"),
    (IngestConfig, {"min_tip_days": 31}, r"ingest.min_tip_days=31 .* window_days \(30\)"),
    (QualityConfig, {"max_null_key_rate": 1.5}, r"quality.max_null_key_rate=1.5 .* share"),
    (QualityConfig, {"volume_ratio_min": 1.2}, r"volume_ratio_min/max=\(1.2, 2.0\)"),
    (ComposeConfig, {"backend": "openai"}, r"compose.openai_base_url='' .* needed by backend"),
    (ComposeConfig, {"backend": "openai", "openai_base_url": "http://vllm:8000/v1"},
     r"compose.extractive=True .* set extractive = false"),
    (ComposeConfig, {"backend": "openai", "openai_base_url": "http://u:p@vllm/v1",
                     "extractive": False}, r"openai_base_url='<redacted>' .* no credentials"),
    (EncoderAlignConfig, {"fusion_weights": (0.5, 1.5)}, r"fusion_weights=.* in \[0, 1\]"),
])
def test_bad_values_say_value_rule_and_name(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)


def test_params_override_ingest_knobs_and_change_fingerprint(tmp_path):
    s = load_settings("local", home=tmp_path)
    t = s.with_ingest(window_days=14)
    assert t.ingest.window_days == 14 and s.ingest.window_days == 30
    assert t.fingerprint() != s.fingerprint()
    with pytest.raises(ConfigError):
        s.with_ingest(min_tip_days=20, window_days=14)


def test_override_file_replaces_values_key_by_key(monkeypatch, tmp_path):
    override = tmp_path / "scale.toml"
    override.write_text('[compose]\nbackend = "keywords"\nn_shards = 8\n')
    monkeypatch.setenv("MSPA_CONFIG", str(override))
    s = load_settings("local", home=tmp_path)
    assert (s.compose.backend, s.compose.n_shards) == ("keywords", 8)
    assert s.compose.batch_size == 16 and s.ingest.window_days == 30  # the rest unchanged
    override.write_text("[compose]\nn_shardz = 8\n")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['n_shardz'\] in \[compose\]"):
        load_settings("local", home=tmp_path)
    override.write_text("[compose\n")
    with pytest.raises(ConfigError, match="cannot be read as TOML"):
        load_settings("local", home=tmp_path)


@pytest.mark.parametrize("toml, message", [
    ('[ingest]\nwindow_days = "30"\n',
     "setting ingest.window_days='30' is invalid: it must be an int (write it without quotes: "
     "window_days = 30)"),
    ("[quality]\nmax_quarantine_rate = true\n",
     "setting quality.max_quarantine_rate=True is invalid: it must be a float"),
    ('[alerts]\nenabled = "yes"\n', "setting alerts.enabled='yes' is invalid: it must be a bool"),
    ("[replay]\nhr_ks = 1000\n", "setting replay.hr_ks=1000 is invalid: it must be a list"),
    ("[compose]\nbackend = 3\n", "setting compose.backend=3 is invalid: it must be a str"),
])
def test_a_value_of_the_wrong_type_is_a_config_error(monkeypatch, tmp_path, toml, message):
    override = tmp_path / "typo.toml"
    override.write_text(toml)
    monkeypatch.setenv("MSPA_CONFIG", str(override))
    with pytest.raises(ConfigError) as caught:
        load_settings("local", home=tmp_path)
    assert str(caught.value).startswith(message)


def test_an_int_is_a_valid_float(monkeypatch, tmp_path):
    override = tmp_path / "ok.toml"
    override.write_text("[quality]\nmax_staleness_hours = 12\n")
    monkeypatch.setenv("MSPA_CONFIG", str(override))
    assert load_settings("local", home=tmp_path).quality.max_staleness_hours == 12


@pytest.mark.parametrize("toml, message", [
    # key, value, rule, and the fix: the allowed range, the meaning and the default
    ("[ingest]\nwindow_days = 0\n",
     "setting ingest.window_days=0 is invalid: it must be between 1 and 365 "
     "(days of tipping history ending at ds; default 30)."),
    ("[compose]\nn_shards = 0\n",
     "setting compose.n_shards=0 is invalid: it must be >= 1 "
     "(user shards and author shards each; default 2)."),
    ('[compose]\nbackend = "vllm"\n',
     "setting compose.backend='vllm' is invalid: it must be one of 'text', 'vision', "
     "'keywords' or 'openai' (text: transformers in process; vision: frames as images; "
     "openai: an OpenAI-compatible server at openai_base_url; keywords: no model; default "
     "'text')."),
    ("[align.grpo]\nnum_generations = 1\n",
     "setting align.grpo.num_generations=1 is invalid: it must be >= 2 (GRPO group size: the "
     "advantage compares completions within a group; default 4)."),
    ("[align.grpo]\nper_device_train_batch_size = 6\n",
     "setting align.grpo.per_device_train_batch_size=6 is invalid: it must be a multiple of "
     "num_generations (4)."),
    ("[align.grpo]\nmax_step = 6\n",
     "unknown setting(s) ['max_step'] in [align.grpo]: did you mean 'max_steps'?"),
    ("[align]\nmax_steps = 3\n[align.grpo]\nmax_steps = 4\n",
     "setting align.max_steps=3 is invalid: it is set twice: also as [align.grpo] max_steps; "
     "keep only the latter."),
    ("[align.gate]\nchoice = \"scored\"\n[align.examples]\ncandidate_labels = \"ids\"\n",
     "setting align.gate.choice='scored' is invalid: it scored needs [align.examples] "
     "candidate_labels = 'letters' (an id spans several tokens)."),
    ("[ingest]\nmax_amount = nan\n",
     "setting ingest.max_amount='nan' is invalid: it must be a finite number (larger (or "
     "NaN/Infinity): invalid_amount; default 100000.0)."),
    ("[ingest]\nwindow_dayz = 7\n",
     "unknown setting(s) ['window_dayz'] in [ingest]: did you mean 'window_days'?"),
    ("[align.pod]\ngpu = 8\n", "unknown setting(s) ['gpu'] in [align.pod]: did you mean 'gpus'?"),
    ('artifacts_uri = "gs://bucket"\n',
     "setting artifacts_uri='gs://bucket' is invalid: it must match the pattern "
     "'^(file|s3)://' (start it with file:// or s3://)."),
])
def test_a_bad_value_is_one_line_with_key_value_rule_and_fix(monkeypatch, tmp_path, toml,
                                                             message):
    override = tmp_path / "bad.toml"
    override.write_text(toml)
    monkeypatch.setenv("MSPA_CONFIG", str(override))
    with pytest.raises(ConfigError) as caught:
        load_settings("local", home=tmp_path)
    assert str(caught.value) == message and "\n" not in str(caught.value)


def test_defaults_live_in_the_model_and_the_files_only_set_what_differs(tmp_path):
    """One place for defaults: no value in conf/*.toml repeats the model's default."""
    import tomllib

    from mspa_tasks.config import CONF_DIR, Settings

    for env in ("local", "prod"):
        settings = load_settings(env, home=tmp_path)
        raw = tomllib.loads((CONF_DIR / f"{env}.toml").read_text())
        tables = [(name, Settings.model_fields[name].annotation, values)
                  for name, values in raw.items() if isinstance(values, dict)]
        checked = set()
        while tables:
            section, model, values = tables.pop()
            checked.add(section)
            for key, value in values.items():
                annotation = model.model_fields[key].annotation
                if isinstance(value, dict) and isinstance(annotation, type) \
                        and issubclass(annotation, BaseModel):
                    tables.append((f"{section}.{key}", annotation, value))  # [align.grpo]
                    continue
                default = model.model_fields[key].get_default(call_default_factory=True)
                if section == "vectors" and key in ("milvus_conn_id", "milvus_uri"):
                    continue  # where this environment's Milvus is: stated on purpose
                if key == "launcher":
                    continue  # which launcher: stated on purpose in each environment
                assert value != (list(default) if isinstance(default, tuple) else default), \
                    f"{env}.toml [{section}] {key} repeats the default"
        assert {"align.examples", "align.grpo"} <= checked  # the sub-sections were walked
        assert settings.env == env


def test_dag_params_take_their_bounds_from_the_settings_model():
    from mspa_airflow.params import param_overrides, setting_param

    window = setting_param("ingest", "window_days")
    assert window.value == 30
    assert (window.schema["minimum"], window.schema["maximum"]) == (1, 365)
    groups = setting_param("align", "grpo.num_generations", optional=True)
    assert groups.value is None and groups.schema["type"] == ["integer", "null"]
    assert groups.schema["minimum"] == 2
    assert param_overrides({"window_days": "14", "min_authors": None}, "ingest",
                           ("window_days", "min_authors")) == {"window_days": 14}
    # a Param named for the UI, overriding a setting of a sub-section
    assert param_overrides({"max_steps": "3", "tolerance": "0.1", "recipe": ""}, "align",
                           {"max_steps": "grpo.max_steps", "tolerance": "gate.tolerance",
                            "recipe": "recipe"}) == {"grpo": {"max_steps": 3},
                                                     "gate": {"tolerance": 0.1}}


@pytest.mark.parametrize(("toml", "message"), [
    # "var" is read as the URI's host: the files would land in /artifacts
    ('artifacts_uri = "file://var/artifacts"\n', "names the host 'var'"),
    ('artifacts_uri = "file://tmp/X"\n', "names the host 'tmp'"),
    ('artifacts_uri = "file://./X"\n', "names the host '.'"),
    ('artifacts_uri = "file://../../tmp/X"\n', "names the host '..'"),
    ('artifacts_uri = "file:relative/X"\n', "start it with file://"),
    ('artifacts_uri = "file:///srv/../etc/X"\n', "steps out with '..'"),
    ('artifacts_uri = "file:///srv/a#b"\n', "has a query or fragment"),
    ('env = "prod"\n', "setting env='prod' is invalid: it must stay 'local', the environment "
     "MSPA_ENV picks"),
])
def test_a_uri_that_would_write_elsewhere_is_refused_before_anything_runs(
        monkeypatch, tmp_path, toml, message):
    override = tmp_path / "bad.toml"
    override.write_text(toml)
    monkeypatch.setenv("MSPA_CONFIG", str(override))
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings("local", home=tmp_path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["a#b", "a%41", "a?b", "a b"])
def test_a_home_with_url_characters_keeps_every_file_inside_it(tmp_path, name):
    """'#', '?' and '%' end or escape a URL's path: the home is percent-encoded in the URLs
    built from it, and the warehouse, artifacts and models land inside it, nowhere else."""
    import sqlalchemy as sa

    from mspa_tasks.artifacts import open_store

    home = tmp_path / name
    settings = load_settings("local", home=home)
    store = open_store(settings.artifacts_uri)
    store.put_text("probe.txt", "x")
    engine = sa.create_engine(settings.warehouse_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE probe (x INTEGER)"))
    engine.dispose()
    assert (home / "artifacts" / "probe.txt").read_text() == "x"
    assert (home / "warehouse.db").is_file() and settings.models_dir == home / "models"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no sibling folder
    assert store.get_text("probe.txt") == "x" and open_store(store.uri("")).exists("probe.txt")


def test_a_home_or_models_dir_that_is_a_file_is_refused(monkeypatch, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigError, match="MSPA_HOME=.* is a file"):
        load_settings("local", home=a_file)
    override = tmp_path / "o.toml"
    override.write_text(f'models_dir = "{a_file}"\n')
    monkeypatch.setenv("MSPA_CONFIG", str(override))
    with pytest.raises(ConfigError, match="models_dir=.* must be a folder"):
        load_settings("local", home=tmp_path / "home")


def test_every_setting_says_what_it_means():
    """`mspa config`, the DAG Params and the errors show a setting's description: none is
    without one."""
    import inspect

    from mspa_tasks import config

    missing = [f"{name}.{field}" for name, cls in inspect.getmembers(config, inspect.isclass)
               if issubclass(cls, config.BaseModel) and cls.__module__ == config.__name__
               for field, info in cls.model_fields.items() if not info.description]
    assert missing == []


def test_an_overlay_replaces_one_key_of_a_sub_section_and_keeps_the_rest(monkeypatch, tmp_path):
    """MSPA_CONFIG's ``[align.grpo] beta`` changes beta only: local.toml's
    ``[align.grpo] max_steps`` and ``[align.examples]`` stay."""
    overlay = tmp_path / "overlay.toml"
    overlay.write_text("[align.grpo]\nbeta = 0.5\n")
    base = load_settings("local", home=tmp_path)
    monkeypatch.setenv("MSPA_CONFIG", str(overlay))
    s = load_settings("local", home=tmp_path)
    assert s.align.grpo.beta == 0.5 and base.align.grpo.beta != 0.5
    assert s.align.grpo.max_steps == base.align.grpo.max_steps != 8  # local.toml's, not default
    assert s.align.examples == base.align.examples


def test_a_flat_align_key_of_the_old_layout_lands_in_its_sub_section_with_a_warning(
        monkeypatch, tmp_path, caplog):
    overlay = tmp_path / "old.toml"
    overlay.write_text("[align]\neval_batch_size = 3\nexamples_per_user = \"last_tip\"\n")
    monkeypatch.setenv("MSPA_CONFIG", str(overlay))
    with caplog.at_level(logging.WARNING, logger="mspa_tasks.config"):
        s = load_settings("local", home=tmp_path)
    assert s.align.gate.batch_size == 3 and s.align.examples.per_user == "last_tip"
    assert "[align] eval_batch_size is deprecated: it is now [align.gate] batch_size" \
        in caplog.text


def test_a_replaced_sub_section_keeps_its_other_values(tmp_path):
    s = load_settings("local", home=tmp_path)
    changed = s.with_align(grpo={"beta": 0.5}, examples={"max_eval_users": 3})
    assert (changed.align.grpo.beta, changed.align.grpo.max_steps) == (0.5, s.align.grpo.max_steps)
    assert changed.align.examples.max_train_users == s.align.examples.max_train_users
    assert changed.align.examples.max_eval_users == 3
