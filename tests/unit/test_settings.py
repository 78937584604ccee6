"""Settings of the Kafka service: TOML file, STREAMVAE_* variables on top, secrets hidden."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

import consumers.settings as settings_module
from consumers.settings import (
    KafkaSettings,
    RunSettings,
    Secret,
    SecuritySettings,
    Settings,
    SettingsError,
)
from streamvae.errors import ConfigError

BASE = """
[kafka]
bootstrap_servers = ["kafka-1:9092"]
topics = ["plant.sensors"]

[detector.window]
channels = ["flow", "pressure"]
"""

SASL = """
[kafka.security]
protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
username = "streamvae"
"""

PASSWORD = "hunter2-Zq9"  # distinctive, so a leak is found by a substring search


def write(tmp_path: Path, text: str = BASE, name: str = "streamvae.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = BASE, env: dict[str, str] | None = None) -> Settings:
    return Settings.load(write(tmp_path, text), env=env or {})


def load_error(tmp_path: Path, text: str = BASE, env: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        load(tmp_path, text, env)
    return str(info.value)


ENV_ONLY = {
    "STREAMVAE_KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092",
    "STREAMVAE_KAFKA_TOPICS": "plant.sensors",
    "STREAMVAE_DETECTOR_WINDOW_CHANNELS": "flow,pressure",
}


# ------------------------------------------------------------------------ loading


def test_a_minimal_file_loads_with_the_defaults(tmp_path):
    s = load(tmp_path)
    assert s.kafka.bootstrap_servers == ("kafka-1:9092",)
    assert s.kafka.topics == ("plant.sensors",)
    assert s.kafka.group_id == "streamvae"
    assert s.kafka.security == SecuritySettings()
    assert s.run == RunSettings()
    assert s.detector.window.channels == ("flow", "pressure")
    assert s.readings.asset_field == "asset"


def test_settings_load_from_the_environment_alone():
    s = Settings.load(env=ENV_ONLY)
    assert s.kafka.bootstrap_servers == ("kafka-1:9092",)
    assert s.detector.window.channels == ("flow", "pressure")


def test_the_environment_defaults_to_os_environ(monkeypatch):
    monkeypatch.setattr(settings_module.os, "environ", dict(ENV_ONLY))
    assert Settings.load().kafka.topics == ("plant.sensors",)


def test_an_env_var_overrides_the_file(tmp_path):
    s = load(
        tmp_path,
        BASE + "\n[run]\nmetrics_port = 9200\n",
        {"STREAMVAE_RUN_METRICS_PORT": "9300", "STREAMVAE_KAFKA_GROUP_ID": "pumps"},
    )
    assert s.run.metrics_port == 9300
    assert s.kafka.group_id == "pumps"


def test_bootstrap_servers_take_a_comma_separated_string_or_a_list(tmp_path):
    text = BASE.replace('["kafka-1:9092"]', '"kafka-1:9092, kafka-2:9093,"')
    assert load(tmp_path, text).kafka.bootstrap_servers == ("kafka-1:9092", "kafka-2:9093")
    env = {"STREAMVAE_KAFKA_BOOTSTRAP_SERVERS": "[::1]:9092,kafka-3:19092"}
    assert load(tmp_path, BASE, env).kafka.bootstrap_servers == ("[::1]:9092", "kafka-3:19092")


def test_float_settings_accept_toml_integers(tmp_path):
    s = load(tmp_path, BASE + "\n[run]\ncheckpoint_interval_s = 2\n")
    assert s.run.checkpoint_interval_s == 2.0
    assert isinstance(s.run.checkpoint_interval_s, float)


def test_a_missing_settings_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(SettingsError, match=r"absent\.toml: cannot read the settings file"):
        Settings.load(path, env={})


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    message = load_error(tmp_path, "[kafka\nbootstrap_servers = 1\n")
    assert "streamvae.toml: not valid TOML" in message


def test_settings_error_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        load(tmp_path, BASE + "\n[run]\nmetrics_port = 70000\n")


# ------------------------------------------------------------ required and unknown


def test_missing_detector_is_refused_saying_what_to_add(tmp_path):
    text = '[kafka]\nbootstrap_servers = ["kafka-1:9092"]\ntopics = ["plant.sensors"]\n'
    message = load_error(tmp_path, text)
    assert message.startswith("detector.window.channels: required")
    assert "under [detector.window]" in message
    assert "STREAMVAE_DETECTOR_WINDOW_CHANNELS" in message


def test_missing_bootstrap_servers_is_refused_saying_what_to_add(tmp_path):
    message = load_error(tmp_path, BASE.replace('bootstrap_servers = ["kafka-1:9092"]', ""))
    assert message.startswith("kafka.bootstrap_servers: required")
    assert "under [kafka]" in message
    assert "STREAMVAE_KAFKA_BOOTSTRAP_SERVERS" in message


@pytest.mark.parametrize(
    ("extra", "key", "known"),
    [
        ("[kafak]\nx = 1\n", "kafak", "'kafka'"),
        ("[kafka.security]\nprotocl = 'SSL'\n", "kafka.security.protocl", "'password_file'"),
        ("[run]\nmetrics_prot = 1\n", "run.metrics_prot", "'metrics_port'"),
    ],
)
def test_unknown_key_is_refused_naming_it(tmp_path, extra, key, known):
    message = load_error(tmp_path, BASE + "\n" + extra)
    assert message.startswith(f"{key}: unknown key")
    assert "known keys" in message
    assert known in message
    assert "did you mean" in message


def test_unknown_key_in_kafka_is_refused_naming_it(tmp_path):
    message = load_error(tmp_path, BASE.replace("topics =", "topic ="))
    assert message.startswith("kafka.topic: unknown key (did you mean 'topics'?)")
    assert "'bootstrap_servers'" in message


def test_unknown_key_in_a_detector_table_is_refused(tmp_path):
    message = load_error(tmp_path, BASE + "\n[detector.threshold]\nmargn = 0.2\n")
    assert message.startswith("detector.threshold: unknown field(s) ['margn']")
    assert "'margin'" in message


def test_a_section_that_is_not_a_table_is_refused(tmp_path):
    message = load_error(tmp_path, 'run = "fast"\n' + BASE)
    assert message.startswith("run: must be a table")


def test_unknown_streamvae_env_var_is_refused_with_suggestions(tmp_path):
    message = load_error(tmp_path, env={"STREAMVAE_KAFKA_MAX_POLL_RECORD": "10"})
    assert "STREAMVAE_KAFKA_MAX_POLL_RECORD" in message
    assert "did you mean STREAMVAE_KAFKA_MAX_POLL_RECORDS" in message


def test_allow_listed_and_unprefixed_env_vars_are_ignored(tmp_path):
    env = {"STREAMVAE_CONSTRAINTS": "none", "KAFKA_HOME": "/opt", "streamvae_x": "1"}
    assert load(tmp_path, env=env).kafka.group_id == "streamvae"


def test_the_other_subcommands_variables_do_not_stop_the_service_from_starting(tmp_path):
    env = {"STREAMVAE_REGISTRY": "/var/lib/streamvae/models", "STREAMVAE_SKAB": "/data/skab"}
    assert load(tmp_path, env=env).kafka.group_id == "streamvae"


def test_every_setting_has_its_own_env_var():
    specs = settings_module._env_specs()  # raises if two settings shared a name
    assert specs["STREAMVAE_KAFKA_SECURITY_PASSWORD"].path == ("kafka", "security", "password")
    assert specs["STREAMVAE_DETECTOR_TRAIN_BETA_BETA_MAX"].path == (
        "detector",
        "train",
        "beta",
        "beta_max",
    )
    assert "STREAMVAE_READINGS_ASSET_FIELD" in specs
    assert "STREAMVAE_RUN_MODEL" in specs


# ----------------------------------------------------------------- env coercion


def test_nested_detector_settings_from_env(tmp_path):
    env = {
        "STREAMVAE_DETECTOR_WINDOW_CHANNELS": " flow, pressure ,,temperature ",
        "STREAMVAE_DETECTOR_THRESHOLD_MARGIN": "0.25",
        "STREAMVAE_DETECTOR_WARMUP_WINDOWS": "500",
        "STREAMVAE_DETECTOR_THRESHOLD_PROTECT": "no",
        "STREAMVAE_DETECTOR_TRAIN_BETA_BETA_MAX": "1",
    }
    d = load(tmp_path, env=env).detector
    assert d.window.channels == ("flow", "pressure", "temperature")
    assert d.threshold.margin == 0.25
    assert d.warmup_windows == 500
    assert d.threshold.protect is False
    assert d.train.beta.beta_max == 1.0


def test_readings_settings_from_file_and_env(tmp_path):
    text = BASE + '\n[readings]\nasset_field = "device"\n'
    s = load(tmp_path, text, {"STREAMVAE_READINGS_NUMERIC_STRINGS": "true"})
    assert s.readings.asset_field == "device"
    assert s.readings.numeric_strings is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("1", True), ("False", False), ("no", False), ("0", False)],
)
def test_env_booleans_are_coerced(tmp_path, text, expected):
    env = {"STREAMVAE_KAFKA_SECURITY_SSL_CHECK_HOSTNAME": text}
    assert load(tmp_path, env=env).kafka.security.ssl_check_hostname is expected


def test_a_bad_env_boolean_is_refused(tmp_path):
    message = load_error(tmp_path, env={"STREAMVAE_READINGS_BOOL_VALUES": "maybe"})
    assert message == (
        "readings.bool_values: must be true or false (also 1/0, yes/no), got 'maybe' "
        "(from STREAMVAE_READINGS_BOOL_VALUES)"
    )


def test_empty_or_none_env_value_unsets_an_optional_setting(tmp_path):
    text = BASE + '\n[run]\nsite = "plant-1"\n\n[detector.alert]\nn = 20\n'
    env = {"STREAMVAE_RUN_SITE": "", "STREAMVAE_DETECTOR_ALERT_N": "None"}
    s = load(tmp_path, text, env)
    assert s.run.site is None
    assert s.detector.alert.n is None


def test_an_empty_env_list_lets_a_pattern_replace_the_file_topics(tmp_path):
    env = {"STREAMVAE_KAFKA_TOPICS": "", "STREAMVAE_KAFKA_TOPIC_PATTERN": r"plant\..*"}
    k = load(tmp_path, env=env).kafka
    assert k.topics == ()
    assert k.topic_pattern == r"plant\..*"


# ------------------------------------------------------------------- error sources


def test_error_names_the_field_and_the_source(tmp_path):
    message = load_error(tmp_path, env={"STREAMVAE_KAFKA_MAX_POLL_RECORDS": "abc"})
    assert message == (
        "kafka.max_poll_records: must be an integer >= 1, got 'abc' "
        "(from STREAMVAE_KAFKA_MAX_POLL_RECORDS)"
    )
    path = write(tmp_path, BASE.replace("[kafka]", '[kafka]\nmax_poll_records = "abc"'))
    with pytest.raises(SettingsError) as info:
        Settings.load(path, env={})
    assert str(info.value) == (
        f"kafka.max_poll_records: must be an integer >= 1, got 'abc' (from {path})"
    )


def test_a_toml_boolean_is_not_an_integer(tmp_path):
    message = load_error(tmp_path, BASE.replace("[kafka]", "[kafka]\nmax_poll_records = true"))
    assert message.startswith("kafka.max_poll_records: must be an integer >= 1, got True")


def test_a_cross_field_error_names_both_sources(tmp_path):
    text = BASE.replace("[kafka]", "[kafka]\nsession_timeout_ms = 6000")
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        Settings.load(path, env={"STREAMVAE_KAFKA_HEARTBEAT_INTERVAL_MS": "6000"})
    message = str(info.value)
    assert message.startswith("kafka.heartbeat_interval_ms: must be below session_timeout_ms")
    assert message.endswith(f"(from {path} and STREAMVAE_KAFKA_HEARTBEAT_INTERVAL_MS)")
    assert info.value.fields == ("kafka.session_timeout_ms", "kafka.heartbeat_interval_ms")


def test_detector_errors_name_the_dotted_field_and_the_source(tmp_path):
    message = load_error(tmp_path, env={"STREAMVAE_DETECTOR_WINDOW_PERIOD_S": "-1"})
    assert message.startswith("detector.window.period_s: must be > 0.0, got -1.0")
    assert message.endswith("(from STREAMVAE_DETECTOR_WINDOW_PERIOD_S)")
    path = write(tmp_path, BASE + "\n[detector]\nwarmup_windows = 2\n")
    with pytest.raises(SettingsError, match=r"^detector\.warmup_windows: .*\(from .*toml\)$"):
        Settings.load(path, env={})


# ------------------------------------------------------------------------ topics


@pytest.mark.parametrize(
    ("kafka_lines", "which"),
    [
        ('topics = ["plant.sensors"]\ntopic_pattern = "plant\\\\..*"', "both are set"),
        ("", "neither is set"),
    ],
)
def test_exactly_one_of_topics_and_topic_pattern(tmp_path, kafka_lines, which):
    text = BASE.replace('topics = ["plant.sensors"]', kafka_lines)
    message = load_error(tmp_path, text)
    assert message.startswith("kafka.topics: set exactly one of topics")
    assert which in message


def test_a_topic_pattern_subscribes_instead_of_topics(tmp_path):
    text = BASE.replace('topics = ["plant.sensors"]', 'topic_pattern = "plant\\\\..*"')
    assert load(tmp_path, text).kafka.topic_pattern == r"plant\..*"


def test_topic_pattern_must_compile(tmp_path):
    env = {"STREAMVAE_KAFKA_TOPICS": "", "STREAMVAE_KAFKA_TOPIC_PATTERN": "plant.(sensors"}
    message = load_error(tmp_path, env=env)
    assert message.startswith("kafka.topic_pattern: not a valid regular expression")


def test_an_output_topic_matched_by_the_pattern_is_refused(tmp_path):
    env = {"STREAMVAE_KAFKA_TOPICS": "", "STREAMVAE_KAFKA_TOPIC_PATTERN": r"streamvae\..*"}
    message = load_error(tmp_path, env=env)
    assert message.startswith("kafka.alert_topic: 'streamvae.alerts.v1' matches topic_pattern")


@pytest.mark.parametrize(
    ("env", "start"),
    [
        ({"STREAMVAE_KAFKA_DLQ_TOPIC": "streamvae.alerts.v1"}, "kafka.dlq_topic: must differ"),
        ({"STREAMVAE_KAFKA_STATE_TOPIC": "streamvae.dlq.v1"}, "kafka.state_topic: must differ"),
        ({"STREAMVAE_KAFKA_ALERT_TOPIC": "plant.sensors"}, "kafka.alert_topic: 'plant.sensors'"),
        (
            {"STREAMVAE_KAFKA_SCORES_TOPIC": "streamvae.alerts.v1"},
            "kafka.scores_topic: must differ",
        ),
    ],
)
def test_output_topics_differ_from_each_other_and_from_the_input(tmp_path, env, start):
    assert load_error(tmp_path, env=env).startswith(start)


@pytest.mark.parametrize("topic", ["plant sensors", "a" * 250, "..", "plant/sensors"])
def test_an_invalid_topic_name_is_refused(tmp_path, topic):
    message = load_error(tmp_path, env={"STREAMVAE_KAFKA_TOPICS": topic})
    assert message.startswith("kafka.topics:")
    assert "not a valid Kafka topic name" in message


# ------------------------------------------------------------ servers and timeouts


@pytest.mark.parametrize(
    "server", ["kafka-1", "kafka-1:0", "kafka-1:65536", "kafka-1:x", "PLAINTEXT://kafka-1:9092"]
)
def test_a_bad_bootstrap_server_is_refused(tmp_path, server):
    message = load_error(tmp_path, env={"STREAMVAE_KAFKA_BOOTSTRAP_SERVERS": server})
    assert message.startswith(f"kafka.bootstrap_servers: {server!r} is not host:port")
    assert "(from STREAMVAE_KAFKA_BOOTSTRAP_SERVERS)" in message


def test_heartbeat_must_be_below_the_session_timeout():
    with pytest.raises(SettingsError, match="heartbeat_interval_ms: must be below"):
        KafkaSettings(
            bootstrap_servers=("k:9092",),
            topics=("t",),
            session_timeout_ms=3000,
            heartbeat_interval_ms=3000,
        )


def test_max_poll_interval_must_exceed_the_heartbeat():
    with pytest.raises(SettingsError, match="max_poll_interval_ms: must be above"):
        KafkaSettings(bootstrap_servers=("k:9092",), topics=("t",), max_poll_interval_ms=3000)


@pytest.mark.parametrize("port", [-1, 0, 1, 65535])
def test_metrics_port_takes_minus_one_zero_or_a_port(port):
    assert RunSettings(metrics_port=port).metrics_port == port


@pytest.mark.parametrize("port", ["-2", "65536"])
def test_a_bad_metrics_port_is_refused(tmp_path, port):
    message = load_error(tmp_path, env={"STREAMVAE_RUN_METRICS_PORT": port})
    assert message.startswith("run.metrics_port: must be an integer: -1 (no HTTP server)")


def test_run_model_must_exist(tmp_path):
    message = load_error(tmp_path, env={"STREAMVAE_RUN_MODEL": str(tmp_path / "m.safetensors")})
    assert message.startswith("run.model: no such file")


def test_readings_channels_must_allow_every_window_channel(tmp_path):
    message = load_error(tmp_path, BASE + '\n[readings]\nchannels = ["flow"]\n')
    assert message.startswith("readings.channels: must allow every channel")
    assert "['pressure']" in message


# ------------------------------------------------------------------------ security


def test_a_password_in_the_file_is_refused_pointing_at_the_env_var(tmp_path):
    message = load_error(tmp_path, BASE + SASL + f'password = "{PASSWORD}"\n')
    assert message.startswith("kafka.security.password: a password in the settings file")
    assert "STREAMVAE_KAFKA_SECURITY_PASSWORD" in message
    assert "password_file" in message
    assert PASSWORD not in message


def test_an_ssl_password_in_the_file_is_refused_pointing_at_the_env_var(tmp_path):
    message = load_error(tmp_path, BASE + SASL + f'ssl_password = "{PASSWORD}"\n')
    assert message.startswith("kafka.security.ssl_password: a password in the settings file")
    assert "STREAMVAE_KAFKA_SECURITY_SSL_PASSWORD" in message
    assert "ssl_password_file" in message
    assert PASSWORD not in message


def test_password_file_is_read_and_stripped(tmp_path):
    secret = tmp_path / "kafka-password"
    secret.write_text(f"  {PASSWORD}\n", encoding="utf-8")
    s = load(tmp_path, BASE + SASL + f'password_file = "{secret}"\n')
    assert s.kafka.security.password == Secret(PASSWORD)


def test_a_missing_password_file_is_an_error_naming_the_key_and_path(tmp_path):
    secret = tmp_path / "absent"
    message = load_error(tmp_path, BASE + SASL + f'password_file = "{secret}"\n')
    assert message.startswith(f"kafka.security.password_file: cannot read '{secret}'")
    assert message.endswith("streamvae.toml)")


def test_an_empty_password_file_is_refused(tmp_path):
    secret = tmp_path / "empty"
    secret.write_text("\n", encoding="utf-8")
    message = load_error(tmp_path, BASE + SASL + f'password_file = "{secret}"\n')
    assert message.startswith(f"kafka.security.password_file: '{secret}' is empty")


def test_the_password_env_var_overrides_the_password_file(tmp_path):
    text = BASE + SASL + f'password_file = "{tmp_path / "absent"}"\n'
    s = load(tmp_path, text, {"STREAMVAE_KAFKA_SECURITY_PASSWORD": PASSWORD})
    assert s.kafka.security.password == Secret(PASSWORD)


def test_password_and_password_file_both_in_the_env_are_refused(tmp_path):
    env = {
        "STREAMVAE_KAFKA_SECURITY_PASSWORD": PASSWORD,
        "STREAMVAE_KAFKA_SECURITY_PASSWORD_FILE": str(tmp_path / "p"),
    }
    message = load_error(tmp_path, BASE + SASL, env)
    assert "not both" in message
    assert PASSWORD not in message


def test_sasl_ssl_settings_pass_through_to_kafka_kwargs(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    text = BASE + SASL + f'ssl_cafile = "{ca}"\n'
    s = load(tmp_path, text, {"STREAMVAE_KAFKA_SECURITY_PASSWORD": PASSWORD})
    assert s.kafka.security.kafka_kwargs() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "streamvae",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": str(ca),
        "ssl_check_hostname": True,
    }


def test_plaintext_kafka_kwargs_hold_only_the_protocol():
    assert SecuritySettings().kafka_kwargs() == {"security_protocol": "PLAINTEXT"}


def test_ssl_kafka_kwargs_hold_the_client_certificate_and_no_sasl_keys(tmp_path):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("cert", encoding="utf-8")
    key.write_text("key", encoding="utf-8")
    sec = SecuritySettings(
        protocol="SSL",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_password=Secret(PASSWORD),
        ssl_check_hostname=False,
    )
    assert sec.kafka_kwargs() == {
        "security_protocol": "SSL",
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_password": PASSWORD,
        "ssl_check_hostname": False,
    }


@pytest.mark.parametrize("missing", ["sasl_mechanism", "username", "password"])
def test_a_sasl_protocol_needs_mechanism_username_and_password(missing):
    kwargs = {"sasl_mechanism": "PLAIN", "username": "u", "password": Secret(PASSWORD)}
    del kwargs[missing]
    with pytest.raises(SettingsError, match=f"kafka.security.{missing}: required with protocol"):
        SecuritySettings(protocol="SASL_PLAINTEXT", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_a_sasl_mechanism_without_a_sasl_protocol_is_refused(protocol):
    with pytest.raises(SettingsError, match="sasl_mechanism: only used with protocol 'SASL_"):
        SecuritySettings(protocol=protocol, sasl_mechanism="PLAIN")


def test_ssl_files_without_tls_are_refused(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("ca", encoding="utf-8")
    with pytest.raises(SettingsError, match="ssl_cafile: only used with protocol 'SSL'"):
        SecuritySettings(protocol="PLAINTEXT", ssl_cafile=str(ca))


def test_an_ssl_file_must_exist_naming_the_field_and_path(tmp_path):
    ca = tmp_path / "absent-ca.pem"
    message = load_error(
        tmp_path,
        env={
            "STREAMVAE_KAFKA_SECURITY_PROTOCOL": "SSL",
            "STREAMVAE_KAFKA_SECURITY_SSL_CAFILE": str(ca),
        },
    )
    assert message == (
        f"kafka.security.ssl_cafile: no such file '{ca}' (from STREAMVAE_KAFKA_SECURITY_SSL_CAFILE)"
    )


def test_a_secret_hides_its_value_until_revealed():
    secret = Secret(PASSWORD)
    assert repr(secret) == "Secret('********')"
    assert str(secret) == f"{secret}" == "********"
    assert secret.reveal() == PASSWORD


def test_secrets_never_appear_in_repr_str_or_redacted(tmp_path):
    secret_file = tmp_path / "ssl-password"
    secret_file.write_text(PASSWORD[::-1], encoding="utf-8")
    cert = tmp_path / "client.pem"
    cert.write_text("cert", encoding="utf-8")
    text = BASE + SASL + f'ssl_certfile = "{cert}"\nssl_password_file = "{secret_file}"\n'
    s = load(tmp_path, text, {"STREAMVAE_KAFKA_SECURITY_PASSWORD": PASSWORD})
    assert s.kafka.security.ssl_password == Secret(PASSWORD[::-1])
    redacted = json.dumps(s.redacted())
    for shown in (repr(s), str(s), redacted):
        assert PASSWORD not in shown
        assert PASSWORD[::-1] not in shown
    assert s.redacted()["kafka"]["security"]["password"] == "********"
    assert s.redacted()["kafka"]["security"]["ssl_password"] == "********"


@pytest.mark.parametrize(
    ("extra_text", "extra_env"),
    [
        ("", {"STREAMVAE_KAFKA_MAX_POLL_RECORDS": "abc"}),
        ("", {"STREAMVAE_KAFKA_SECURITY_PASSWRD": "x"}),  # a typo'd variable beside the secret
        ("", {"STREAMVAE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}),  # protocol vs ssl file
        ("\n[run]\nmetrics_port = 70000\n", {}),
        ("", {"STREAMVAE_DETECTOR_WINDOW_CHANNELS": ""}),
    ],
)
def test_secrets_never_appear_in_errors(tmp_path, extra_text, extra_env):
    cert = tmp_path / "client.pem"
    cert.write_text("cert", encoding="utf-8")
    secret_file = tmp_path / "ssl-password"
    secret_file.write_text(PASSWORD[::-1], encoding="utf-8")
    text = (
        BASE + extra_text + SASL + f'ssl_certfile = "{cert}"\nssl_password_file = "{secret_file}"\n'
    )
    env = {"STREAMVAE_KAFKA_SECURITY_PASSWORD": PASSWORD, **extra_env}
    with pytest.raises(SettingsError) as info:
        load(tmp_path, text, env)
    for shown in (str(info.value), repr(info.value)):
        assert PASSWORD not in shown
        assert PASSWORD[::-1] not in shown


def test_a_secret_in_a_misspelt_variable_is_not_echoed(tmp_path):
    message = load_error(tmp_path, env={"STREAMVAE_KAFKA_SECURITY_PASWORD": PASSWORD})
    assert "STREAMVAE_KAFKA_SECURITY_PASSWORD" in message
    assert PASSWORD not in message


def test_a_plain_string_password_is_refused_without_showing_it():
    with pytest.raises(SettingsError) as info:
        SecuritySettings(
            protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            username="u",
            password=PASSWORD,  # type: ignore[arg-type]
        )
    assert str(info.value) == "kafka.security.password: must be a non-empty Secret, got str"


# ---------------------------------------------------------------------- the record


def test_redacted_is_json_safe_and_lists_every_section(tmp_path):
    d = json.loads(json.dumps(load(tmp_path).redacted()))
    assert set(d) == {"kafka", "detector", "run", "readings"}
    assert d["kafka"]["bootstrap_servers"] == ["kafka-1:9092"]
    assert d["kafka"]["security"]["protocol"] == "PLAINTEXT"
    assert d["detector"]["window"]["channels"] == ["flow", "pressure"]
    assert d["detector"]["train"]["beta"]["beta_max"] == 0.1
    assert d["run"]["metrics_port"] == 9108


def test_settings_are_frozen(tmp_path):
    s = load(tmp_path)
    with pytest.raises(AttributeError):
        s.kafka.group_id = "other"  # type: ignore[misc]


def test_docstring_examples_run():
    result = doctest.testmod(settings_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
