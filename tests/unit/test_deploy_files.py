"""The deployment artefacts in ``deploy/`` agree with the code and with each other.

No Docker engine or Kubernetes cluster is needed: every file is parsed, every setting and
environment variable goes through the real ``Settings.load``, every command line through the
real ``consumers.cli.build_parser()``, and the numbers that must match across files (the
metrics port, the partition count KEDA may scale to, the shutdown timeout) are compared.
Where the real tool is installed (``docker-compose``, ``promtool``) it checks its own file.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.cli import build_parser
from consumers.settings import Settings, SettingsError
from consumers.simulate import demo_detector_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
COMPOSE_TOML = DEPLOY / "compose" / "streamvae.toml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "streamvae.json"
SECRET_PLACEHOLDER = "not-a-real-password"


# ----------------------------------------------------------------------------- helpers


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def k8s_objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        out.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


def k8s_object(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in k8s_objects()
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in deploy/k8s, found {len(found)}"
    return found[0]


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def detector_container() -> dict[str, Any]:
    containers = k8s_object("Deployment", "streamvae")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def configmap_toml() -> str:
    return str(k8s_object("ConfigMap", "streamvae-config")["data"]["streamvae.toml"])


def load_settings(toml_text: str, env: Mapping[str, str], tmp_path: Path) -> Settings:
    """The real loader on a settings text and environment, as the container would run it."""
    path = tmp_path / "streamvae.toml"
    path.write_text(toml_text)
    return Settings.load(path, env=env)


def k8s_env(container: Mapping[str, Any]) -> dict[str, str]:
    """A container's environment; a value from the downward API or a Secret gets a stand-in."""
    return {e["name"]: str(e.get("value", "from-the-cluster")) for e in container.get("env", [])}


def k8s_settings(tmp_path: Path) -> Settings:
    # The password file is the mounted Secret, absent here; the variable stands in for it.
    env = {**k8s_env(detector_container()), "STREAMVAE_KAFKA_SECURITY_PASSWORD": SECRET_PLACEHOLDER}
    return load_settings(configmap_toml(), env, tmp_path)


def compose_settings(tmp_path: Path) -> Settings:
    env = {k: str(v) for k, v in compose()["services"]["detector"]["environment"].items()}
    return load_settings(COMPOSE_TOML.read_text(), env, tmp_path)


def dockerfile_instruction(name: str) -> list[str]:
    """The arguments of every ``NAME ...`` instruction (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def topic_partitions(script: str) -> dict[str, int]:
    """``--topic T ... --partitions N`` of every kafka-topics.sh --create line of a script."""
    out = {}
    for line in script.splitlines():
        m = re.search(r"--create .*--topic (\S+) --partitions (\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def compose_topics_script() -> str:
    return "\n".join(compose()["services"]["kafka-init"]["command"])


def k8s_topics_script() -> str:
    job = k8s_object("Job", "streamvae-topics")
    return "\n".join(job["spec"]["template"]["spec"]["containers"][0]["args"])


def images() -> Iterator[tuple[str, str]]:
    for name, service in compose()["services"].items():
        yield f"compose service {name}", service["image"]
    for obj in k8s_objects():
        if obj["kind"] in ("Deployment", "Job"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                yield f"k8s {obj['kind']} {obj['metadata']['name']}", c["image"]
    for arg in dockerfile_instruction("ARG"):
        if arg.startswith("PYTHON_IMAGE="):
            yield "Dockerfile PYTHON_IMAGE", arg.split("=", 1)[1]


# ----------------------------------------------------------------------------- files parse


def test_every_yaml_file_in_deploy_parses():
    files = yaml_files()
    assert len(files) >= 12
    for path in files:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        assert docs, f"{path.relative_to(ROOT)} is empty"


def test_the_grafana_dashboard_is_json_on_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    used = {
        t["datasource"]["uid"]
        for p in dashboard["panels"]
        for t in p.get("targets", [])
        if "datasource" in t
    }
    assert used == {"prometheus"} <= uids


def test_grafana_provisioning_loads_the_dashboards_from_where_compose_mounts_them():
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "streamvae.yml").read_text()
    )["providers"][0]
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in compose()["services"]["grafana"]["volumes"]
    )
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert (DEPLOY / "grafana" / "dashboards" / DASHBOARD.name).is_file()


# The oldest Kubernetes minor the manifests are meant for (policy/v1 PDBs, emptyDir sizeLimit,
# seccompProfile fields are all older than it).
KUBERNETES_VERSION = "1.28.0"
# Not in the Kubernetes API: KEDA's custom resources (their fields are checked below) and
# kustomize's own file.
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}


def test_every_kubernetes_manifest_matches_the_api_schema_strictly():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")  # a dev dependency
    checked = 0
    for obj in k8s_objects():
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        # strict: an unknown (e.g. misspelt) field is an error, not silently dropped.
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 7


def test_the_kustomization_lists_every_manifest_except_the_example_secret():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}


# ----------------------------------------------------------------------------- images


def test_every_image_is_pinned_to_a_version_never_latest():
    seen = list(images())
    assert len(seen) >= 8
    for where, image in seen:
        name, _, tag = image.rpartition(":")
        assert name, f"{where}: {image!r} has no tag"
        assert "/" not in tag, f"{where}: {image!r} has no tag"
        assert tag != "latest", f"{where}: {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{where}: {image!r} is not pinned to a version"


def test_the_image_runs_as_a_non_root_user():
    users = dockerfile_instruction("USER")
    assert users, "the Dockerfile sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")
    pod = k8s_object("Deployment", "streamvae")["spec"]["template"]["spec"]["securityContext"]
    assert str(pod["runAsUser"]) == users[-1].split(":")[0]


def test_the_image_installs_the_torch_version_the_project_pins():
    pinned = re.search(
        r"^torch==(\S+)", (ROOT / "constraints" / "local.txt").read_text(), re.MULTILINE
    )
    assert pinned is not None
    assert f"TORCH_VERSION={pinned.group(1)}" in dockerfile_instruction("ARG")


def test_the_image_fails_its_build_without_a_cpu_torch_index_instead_of_guessing_one():
    text = DOCKERFILE.read_text()
    assert 'ARG TORCH_INDEX_URL=""' in text
    assert 'if [ -z "${TORCH_INDEX_URL}" ]' in text
    assert "torch.version.cuda" in text  # a CUDA build that slips through fails the build


def test_the_image_entry_point_and_default_command_parse_with_the_real_cli():
    (entrypoint,) = dockerfile_instruction("ENTRYPOINT")
    (cmd,) = dockerfile_instruction("CMD")
    assert json.loads(entrypoint) == ["streamvae"]
    args = build_parser().parse_args(json.loads(cmd))
    assert args.command == "run"
    assert args.config == "/etc/streamvae/streamvae.toml"


# ----------------------------------------------------------------------------- commands


@pytest.mark.parametrize("service", ["detector", "simulator", "alert-bridge"])
def test_every_compose_command_parses_with_the_real_cli(service):
    command = [str(a) for a in compose()["services"][service]["command"]]
    args = build_parser().parse_args(command)
    assert args.command == command[0]


def test_the_alert_bridge_sends_to_the_compose_alertmanager():
    args = build_parser().parse_args(
        [str(a) for a in compose()["services"]["alert-bridge"]["command"]]
    )
    port = compose()["services"]["alertmanager"]["ports"][0].split(":")[-1].split()[0]
    assert args.receiver == "alertmanager"
    assert args.url == f"http://alertmanager:{port}"


def test_amtool_accepts_the_compose_alertmanager_config():
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("no amtool on PATH (Debian: apt-get install prometheus-alertmanager)")
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    done = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_simulator_sends_to_the_topic_the_detector_reads(tmp_path):
    args = build_parser().parse_args(
        [str(a) for a in compose()["services"]["simulator"]["command"]]
    )
    settings = compose_settings(tmp_path)
    assert (args.topic,) == settings.kafka.topics
    assert args.bootstrap == ",".join(settings.kafka.bootstrap_servers)
    assert args.period_s == settings.detector.window.period_s


def test_the_kubernetes_command_parses_with_the_real_cli():
    args = build_parser().parse_args(detector_container()["args"])
    assert args.command == "run"
    mounts = {m["name"]: m["mountPath"] for m in detector_container()["volumeMounts"]}
    assert Path(args.config).parent == Path(mounts["config"])


# ----------------------------------------------------------------------------- settings


def test_the_compose_settings_with_the_compose_environment_load(tmp_path):
    settings = compose_settings(tmp_path)
    assert settings.kafka.bootstrap_servers == ("kafka:9092",)
    assert settings.run.metrics_host == "0.0.0.0"


def test_the_kubernetes_settings_with_the_pod_environment_load(tmp_path):
    settings = k8s_settings(tmp_path)
    assert settings.kafka.security.protocol == "SASL_SSL"
    assert settings.kafka.security.password is not None
    assert settings.run.metrics_host == "0.0.0.0"


def test_the_compose_detector_is_configured_as_the_measured_demo_fleet_detector(tmp_path):
    # compose/streamvae.toml claims the demo's detector configuration (bench_fleet.py measured
    # it on this simulated fleet); only the site label differs.
    detector = compose_settings(tmp_path).detector
    demo = demo_detector_config(detector.window.period_s)
    assert detector == dataclasses.replace(
        demo, alert=dataclasses.replace(demo.alert, site=detector.alert.site)
    )


def test_every_streamvae_variable_in_compose_and_kubernetes_is_a_real_setting(tmp_path):
    variables: dict[str, str] = {}
    for obj in k8s_objects():
        if obj["kind"] in ("Deployment", "Job"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                variables |= k8s_env(container)
    for service in compose()["services"].values():
        variables |= {k: str(v) for k, v in service.get("environment", {}).items()}
    ours = {k: v for k, v in variables.items() if k.startswith("STREAMVAE_")}
    assert ours
    for name, value in sorted(ours.items()):  # one at a time: a failure names the variable
        load_settings(COMPOSE_TOML.read_text(), {name: value}, tmp_path)


def test_the_variable_check_fails_for_a_misspelt_setting(tmp_path):
    with pytest.raises(SettingsError, match="STREAMVAE_KAFKA_CLIENTID"):
        load_settings(COMPOSE_TOML.read_text(), {"STREAMVAE_KAFKA_CLIENTID": "x"}, tmp_path)


def test_the_sasl_password_file_is_inside_the_mounted_secret():
    security = tomllib.loads(configmap_toml())["kafka"]["security"]
    mounts = {m["name"]: m["mountPath"] for m in detector_container()["volumeMounts"]}
    volumes = {
        v["name"]: v
        for v in k8s_object("Deployment", "streamvae")["spec"]["template"]["spec"]["volumes"]
    }
    secret = volumes["kafka-secret"]["secret"]
    paths = {item["path"] for item in secret["items"]}
    password_file = Path(security["password_file"])
    assert password_file.parent == Path(mounts["kafka-secret"])
    assert password_file.name in paths
    assert "password" not in security  # never the secret itself


# ----------------------------------------------------------------------------- ports


def test_the_metrics_port_is_the_same_in_settings_image_scrape_and_compose(tmp_path):
    port = compose_settings(tmp_path).run.metrics_port
    (expose,) = dockerfile_instruction("EXPOSE")
    (healthcheck,) = dockerfile_instruction("HEALTHCHECK")
    m = re.search(r"127\.0\.0\.1:(\d+)/healthz", healthcheck)
    assert m is not None
    scrape = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    (job,) = [j for j in scrape if j["job_name"] == "streamvae"]
    assert int(expose) == int(m.group(1)) == job["dns_sd_configs"][0]["port"] == port
    assert [str(p) for p in compose()["services"]["detector"]["expose"]] == [str(port)]


def test_the_metrics_port_is_the_same_in_settings_pod_probes_and_service(tmp_path):
    port = k8s_settings(tmp_path).run.metrics_port
    container = detector_container()
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named["metrics"] == port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert named.get(container[probe]["httpGet"]["port"]) == port, probe
    service = k8s_object("Service", "streamvae-metrics")
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["port"] == port
    assert named[svc_port["targetPort"]] == port
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_liveness_asks_healthz_and_readiness_asks_readyz():
    container = detector_container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "/healthz" in dockerfile_instruction("HEALTHCHECK")[0]


# ----------------------------------------------------------------------------- scaling


def test_keda_scales_to_at_most_the_partitions_the_topic_jobs_create(tmp_path):
    scaled = k8s_object("ScaledObject", "streamvae")["spec"]
    topic = k8s_settings(tmp_path).kafka.topics[0]
    k8s_partitions = topic_partitions(k8s_topics_script())[topic]
    assert scaled["maxReplicaCount"] == k8s_partitions
    assert topic_partitions(compose_topics_script())[topic] == k8s_partitions


def test_keda_watches_the_brokers_group_and_topic_of_the_settings(tmp_path):
    settings = k8s_settings(tmp_path)
    (trigger,) = k8s_object("ScaledObject", "streamvae")["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["bootstrapServers"] == ",".join(settings.kafka.bootstrap_servers)
    assert meta["consumerGroup"] == settings.kafka.group_id
    assert meta["topic"] == settings.kafka.topics[0]
    assert meta["offsetResetPolicy"] == settings.kafka.auto_offset_reset
    assert int(meta["lagThreshold"]) > 0
    auth = k8s_object("TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert {r["name"] for r in auth["spec"]["secretTargetRef"]} == {"streamvae-kafka"}


def test_the_topics_job_and_keda_authenticate_as_the_service_does(tmp_path):
    kafka = k8s_settings(tmp_path).kafka
    job = k8s_object("Job", "streamvae-topics")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in job["env"]}
    assert env["BOOTSTRAP"]["value"] == ",".join(kafka.bootstrap_servers)
    script = k8s_topics_script()
    assert f"security.protocol={kafka.security.protocol}" in script
    assert f"sasl.mechanism={kafka.security.sasl_mechanism}" in script
    # KEDA names the mechanism its own way: SCRAM-SHA-512 is scram_sha512.
    example = k8s_object("Secret", "streamvae-kafka")["stringData"]
    mechanism = str(kafka.security.sasl_mechanism)
    assert example["sasl"] == mechanism.lower().replace("-sha-", "_sha").replace("-", "_")
    assert example["username"] == kafka.security.username


@pytest.mark.parametrize("script", [compose_topics_script, k8s_topics_script])
def test_the_topic_jobs_create_every_topic_of_the_settings(script, tmp_path):
    kafka = compose_settings(tmp_path).kafka
    created = topic_partitions(script())
    expected = {*kafka.topics, kafka.alert_topic, kafka.dlq_topic, kafka.state_topic}
    assert set(created) == expected | {kafka.models_topic}
    # The service follows partition 0 of the models topic only.
    assert created[kafka.models_topic] == 1
    for topic in (kafka.state_topic, kafka.models_topic):
        (line,) = [x for x in script().splitlines() if f"--topic {topic} " in x]
        assert "cleanup.policy=compact" in line


# ----------------------------------------------------------------------------- the pod


def test_the_pod_has_more_time_to_stop_than_the_service_needs(tmp_path):
    grace = k8s_object("Deployment", "streamvae")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert grace >= k8s_settings(tmp_path).run.shutdown_timeout_s + 10
    compose_grace = compose()["services"]["detector"]["stop_grace_period"]
    assert float(compose_grace.rstrip("s")) >= compose_settings(tmp_path).run.shutdown_timeout_s + 5


def test_the_pod_runs_non_root_on_a_read_only_root_filesystem_without_capabilities():
    spec = k8s_object("Deployment", "streamvae")["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    sc = detector_container()["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in detector_container()["volumeMounts"]}
    assert "/tmp" in mounts  # the one writable path


def test_the_pod_requests_a_core_per_scoring_worker(tmp_path):
    cpu = detector_container()["resources"]["requests"]["cpu"]
    assert float(cpu) == k8s_settings(tmp_path).run.workers
    assert detector_container()["resources"]["limits"]["memory"]


def test_the_deployment_leaves_the_replica_count_to_keda():
    deployment = k8s_object("Deployment", "streamvae")
    assert "replicas" not in deployment["spec"]
    assert (
        k8s_object("ScaledObject", "streamvae")["spec"]["scaleTargetRef"]["name"]
        == (deployment["metadata"]["name"])
    )
    assert k8s_object("PodDisruptionBudget", "streamvae")["spec"]["maxUnavailable"] == 1


# ----------------------------------------------------------------------------- real tools


def test_docker_compose_accepts_the_compose_file():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("no docker-compose on PATH (Debian: apt-get install docker-compose)")
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=DEPLOY,
    )
    assert done.returncode == 0, done.stderr


def test_every_alert_rule_has_a_unique_name_a_severity_and_a_summary():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_promtool_accepts_the_alert_rules():
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("no promtool on PATH (Debian's prometheus package has it)")
    done = subprocess.run(
        [binary, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_config(tmp_path):
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("no promtool on PATH (Debian's prometheus package has it)")
    config = yaml.safe_load(PROMETHEUS.read_text())
    # The rules file is mounted at /etc/prometheus/rules.yml in the container.
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert (
        "./prometheus/rules.yml:/etc/prometheus/rules.yml:ro"
        in (compose()["services"]["prometheus"]["volumes"])
    )
    config["rule_files"] = [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [binary, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
