"""Deployment files, validated by parsing (no Docker engine or cluster here): the image is
non-root and multi-stage, compose runs every service on official images with the ports
``common/settings.py`` and the scrape config expect, Kubernetes has probes, requests, config
and secret wiring, and the generated PrometheusRule matches the promtool-tested rules."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import yaml

from common.settings import Settings
from tests.ops.metric_names import DEPLOY, REPO

PROCESSORS = {"ingest": 9100, "classify": 9101, "route": 9102}
"""Each processor's ops port (ADUAN_METRICS_PORT: /metrics, /healthz, /readyz)."""
INGEST_WEBHOOK_PORT = 8080
"""Ingest's public port (ADUAN_HTTP_PORT): webhooks and liveness only."""
K8S = DEPLOY / "kubernetes"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


# --- Dockerfile ----------------------------------------------------------------------------
def test_dockerfile_is_multi_stage_and_runs_as_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", runtime, flags=re.M)
    assert users and not users[-1].startswith(("0", "root"))
    assert "COPY --from=build /opt/venv" in runtime
    assert "build-essential" not in runtime  # compilers stay in the build stage
    assert re.search(r'^CMD \["python", "-m", "services\.ingest"\]', runtime, flags=re.M)
    assert "ADUAN_HTTP_HOST=0.0.0.0" in runtime  # the default 127.0.0.1 is unreachable


def test_dockerignore_keeps_secrets_and_local_state_out_but_not_sources() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for must in (".git", ".venv", "tests", "**/*.env"):
        assert must in ignored
    for needed in ("common", "schemas", "services", "pyproject.toml", "README.md", "deploy"):
        assert needed not in ignored


# --- docker compose ------------------------------------------------------------------------
def test_compose_runs_kafka_kraft_three_processors_prometheus_and_grafana() -> None:
    services = _compose()["services"]
    assert {"kafka", "ingest", "classify", "route", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "zookeeper" not in services
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_compose_processors_share_one_image_and_pick_their_module() -> None:
    services = _compose()["services"]
    images = {services[name]["image"] for name in PROCESSORS}
    assert len(images) == 1
    for name, port in PROCESSORS.items():
        svc = services[name]
        assert svc["command"] == ["python", "-m", f"services.{name}"]
        env = svc["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
        assert int(env["ADUAN_METRICS_PORT"]) == port
        assert f"127.0.0.1:{port}/readyz" in " ".join(svc["healthcheck"]["test"])
        assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert svc["env_file"][0]["path"] == "./aduan.env"
        assert [str(p) for p in svc.get("expose", [])] == [str(port)]
    # only the webhook port is published; the ops port stays on the compose network
    assert services["ingest"]["ports"] == [f"{INGEST_WEBHOOK_PORT}:{INGEST_WEBHOOK_PORT}"]
    assert int(services["ingest"]["environment"]["ADUAN_HTTP_PORT"]) == INGEST_WEBHOOK_PORT
    assert Settings.model_fields["http_port"].default == INGEST_WEBHOOK_PORT


def test_compose_advertises_the_internal_listener_the_processors_use() -> None:
    env = _compose()["services"]["kafka"]["environment"]
    assert "INTERNAL://kafka:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "INTERNAL://:19092" in env["KAFKA_LISTENERS"]


def test_prometheus_scrapes_the_ports_compose_serves() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    for name, port in PROCESSORS.items():
        assert targets[f"aduan-{name}"] == [f"{name}:{port}"]
    mounts = " ".join(_compose()["services"]["prometheus"]["volumes"])
    assert "./prometheus/rules:/etc/prometheus/rules" in mounts


def test_grafana_provisioning_is_mounted() -> None:
    mounts = " ".join(_compose()["services"]["grafana"]["volumes"])
    assert "./grafana/provisioning:/etc/grafana/provisioning" in mounts
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/aduan.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{path}" in mounts


def test_env_example_lists_every_secret_the_registry_names() -> None:
    registry = yaml.safe_load((DEPLOY / "config" / "registry.yaml").read_text())
    names = {a["app_secret_env"] for a in registry["accounts"]}
    names |= {a["verify_token_env"] for a in registry["accounts"] if a.get("verify_token_env")}
    example = (DEPLOY / "aduan.env.example").read_text()
    keys = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, flags=re.M))
    assert names | {"ADUAN_PSEUDONYM_KEY"} <= keys
    assert all(v == "replace-me" for v in re.findall(r"^[A-Z_0-9]+=(.*)$", example, flags=re.M))
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) == keys


# --- Kubernetes ----------------------------------------------------------------------------
def test_kustomization_lists_every_manifest_except_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"secret.example.yaml"}


def test_deployments_have_probes_requests_non_root_and_config_wiring() -> None:
    deployments = {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] == "Deployment"}
    assert set(deployments) == {f"aduan-{n}" for n in PROCESSORS}
    for name, port in PROCESSORS.items():
        spec = deployments[f"aduan-{name}"]["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == port
        if name == "ingest":
            assert ports == {"http": INGEST_WEBHOOK_PORT, "metrics": port}
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["readinessProbe"]["httpGet"]["port"] == "metrics"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        refs = {next(iter(r)): next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"configMapRef": "aduan-env", "secretRef": "aduan-secrets"}
        env = {e["name"]: e["value"] for e in container["env"]}
        assert int(env["ADUAN_METRICS_PORT"]) == port
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["config"]["configMap"]["name"] == "aduan-config"
        labels = deployments[f"aduan-{name}"]["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == f"aduan-{name}"
        assert labels["app.kubernetes.io/part-of"] == "aduan"


def test_configmap_points_at_the_mounted_config_and_only_known_settings() -> None:
    (cm,) = [d for d in _k8s_docs() if d["kind"] == "ConfigMap"]
    data = cm["data"]
    assert data["ADUAN_REGISTRY_FILE"] == "/etc/aduan/registry.yaml"
    from services.classify.settings import ClassifySettings
    from services.ingest.settings import IngestSettings
    from services.route.settings import RouteSettings

    known = {"KAFKA_BOOTSTRAP_SERVERS"} | {
        f"{model.model_config.get('env_prefix', '')}{f}".upper()
        for model in (Settings, IngestSettings, ClassifySettings, RouteSettings)
        for f in model.model_fields
    }
    assert set(data) <= known, set(data) - known
    secret_keys = {k for k in data if "SECRET" in k or "KEY" in k or "TOKEN" in k}
    assert not secret_keys


def test_ingest_service_publishes_only_the_webhook_port() -> None:
    (svc,) = [
        d for d in _k8s_docs() if d["kind"] == "Service" and d["metadata"]["name"] == "aduan-ingest"
    ]
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]


def test_podmonitor_sets_the_job_names_the_alerts_expect() -> None:
    (pm,) = [d for d in _k8s_docs() if d["kind"] == "PodMonitor"]
    assert pm["spec"]["jobLabel"] == "app.kubernetes.io/name"
    ports = {e["port"] for e in pm["spec"]["podMetricsEndpoints"]}
    deployments = [d for d in _k8s_docs() if d["kind"] == "Deployment"]
    assert ports == {"metrics"}  # never ingest's public webhook port
    for d in deployments:
        (container,) = d["spec"]["template"]["spec"]["containers"]
        assert "metrics" in {p["name"] for p in container["ports"]}


def test_prometheusrule_is_rendered_from_the_rule_files() -> None:
    spec = importlib.util.spec_from_file_location(
        "render_prometheusrule", DEPLOY / "scripts" / "render_prometheusrule.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    on_disk = (K8S / "prometheusrule.yaml").read_text()
    assert module.render() == on_disk, "run: python deploy/scripts/render_prometheusrule.py"


def test_topic_creation_commands_compile_and_call_the_real_function() -> None:
    import inspect

    from common.kafka import ensure_topics

    compose_cmd = _compose()["services"]["topics"]["command"]
    commands = [compose_cmd[-1]]
    for d in _k8s_docs():
        if d["kind"] == "Deployment":
            (init,) = d["spec"]["template"]["spec"]["initContainers"]
            commands.append(init["command"][-1])
    assert len(set(commands)) == 1  # compose and every Deployment do the same thing
    compile(commands[0], "<topics>", "exec")
    assert "from common.kafka import ensure_topics" in commands[0]
    assert "timeout" in inspect.signature(ensure_topics).parameters
