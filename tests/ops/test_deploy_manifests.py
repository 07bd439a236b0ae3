"""Deployment files, validated by parsing (no Docker engine or cluster here): the image is
non-root and multi-stage, compose runs every service on official images with the ports
``common/settings.py`` and the scrape config expect, Kubernetes has probes, requests, config
and secret wiring, and the generated PrometheusRule matches the promtool-tested rules."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from common.settings import Settings
from tests.ops.metric_names import DEPLOY, REPO

PROCESSORS = {
    "ingest": 9100, "classify": 9101, "route": 9102, "desk": 9103, "notify": 9104,
    "mentions": 9105,
}  # fmt: skip
"""Each service's ops port (ADUAN_METRICS_PORT: /metrics, /healthz, /readyz)."""
MODULES = {"mentions": "services.ingest.mentions"}
"""A process's module when it is not ``services.<name>`` (ingest's mention fetcher)."""
INGEST_WEBHOOK_PORT = 8080
"""Ingest's public port (ADUAN_HTTP_PORT): webhooks and liveness only."""
DESK_API_PORT = 8090
"""The desk's public port (ADUAN_HTTP_PORT): /api/v1 and /desk."""
K8S = DEPLOY / "kubernetes"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


WORKLOADS = ("Deployment", "StatefulSet")
"""Route is a StatefulSet (a persistent volume per worker); the others are Deployments."""


def _workloads() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] in WORKLOADS}


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
        assert svc["command"] == ["python", "-m", MODULES.get(name, f"services.{name}")]
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
    names |= {w["secret_env"] for w in registry.get("webhooks", [])}
    names |= {a["reply_token_env"] for a in registry["accounts"] if a.get("reply_token_env")}
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
    deployments = _workloads()
    assert set(deployments) == {f"aduan-{n}" for n in PROCESSORS}
    assert deployments["aduan-route"]["kind"] == "StatefulSet"
    for name, port in PROCESSORS.items():
        spec = deployments[f"aduan-{name}"]["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        assert container["command"] == ["python", "-m", MODULES.get(name, f"services.{name}")]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == port
        if name == "ingest":
            assert ports == {"http": INGEST_WEBHOOK_PORT, "metrics": port}
        elif name == "desk":
            assert ports == {"api": DESK_API_PORT, "metrics": port}
        else:
            assert len(ports) == 1
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
    from services.desk.settings import DeskSettings
    from services.ingest.settings import IngestSettings
    from services.notify.settings import NotifySettings
    from services.route.settings import RouteSettings

    known = {"KAFKA_BOOTSTRAP_SERVERS"} | {
        f"{model.model_config.get('env_prefix', '')}{f}".upper()
        for model in (
            Settings,
            IngestSettings,
            ClassifySettings,
            RouteSettings,
            DeskSettings,
            NotifySettings,
        )
        for f in model.model_fields
    }
    assert set(data) <= known, set(data) - known
    secret_keys = {k for k in data if any(w in k for w in ("SECRET", "KEY", "TOKEN", "PASSWORD"))}
    assert not secret_keys
    user = data["ADUAN_DESK_DATABASE_URL"].split("//")[1].split("@")[0]
    assert ":" not in user  # the password is a secret (ADUAN_DESK_DATABASE_PASSWORD)


def test_ingest_service_publishes_only_the_webhook_port() -> None:
    (svc,) = [
        d for d in _k8s_docs() if d["kind"] == "Service" and d["metadata"]["name"] == "aduan-ingest"
    ]
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]


def test_podmonitor_sets_the_job_names_the_alerts_expect() -> None:
    (pm,) = [d for d in _k8s_docs() if d["kind"] == "PodMonitor"]
    assert pm["spec"]["jobLabel"] == "app.kubernetes.io/name"
    ports = {e["port"] for e in pm["spec"]["podMetricsEndpoints"]}
    deployments = list(_workloads().values())
    assert ports == {"metrics"}  # never ingest's public webhook port
    for d in deployments:
        (container,) = d["spec"]["template"]["spec"]["containers"]
        assert "metrics" in {p["name"] for p in container["ports"]}
        assert "api" not in ports  # the desk's public API port is not scraped


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
    for d in _workloads().values():
        (init,) = d["spec"]["template"]["spec"]["initContainers"]
        commands.append(init["command"][-1])
    assert len(commands) == 1 + len(PROCESSORS)
    assert len(set(commands)) == 1  # compose and every workload do the same thing
    compile(commands[0], "<topics>", "exec")
    assert "from common.kafka import ensure_topics" in commands[0]
    assert "timeout" in inspect.signature(ensure_topics).parameters


# --- the files each processor reads are mounted ----------------------------------------------
READS = {
    "ingest": {"ADUAN_REGISTRY_FILE"},
    "classify": {"ADUAN_REGISTRY_FILE", "ADUAN_CLASSIFY_CONFIG"},
    "route": {"ADUAN_REGISTRY_FILE", "ADUAN_ROUTE_SLA_FILE"},
}
"""The file settings of each processor (a model is optional: the overlay/component adds it)."""
_COMPOSE_VAR = re.compile(r"^\$\{(\w+)(?::-([^}]*)|:\?([^}]*))\}$")


def _host_source(source: str) -> Path | None:
    """A compose volume source as a path under deploy/ (the default of ``${VAR:-default}``);
    None for ``${VAR:?message}``, which compose itself refuses to run without."""
    m = _COMPOSE_VAR.match(source)
    if m:
        if m[3] is not None:
            return None
        source = m[2]
    return (DEPLOY / source).resolve()


def _mounted_source(volumes: list[str], container_path: str) -> Path | None:
    """The host file behind ``container_path`` given ``source:target[:ro]`` volumes."""
    for volume in volumes:
        source, target = (
            volume.rsplit(":", 2)[0:2] if volume.endswith(":ro") else volume.rsplit(":", 1)
        )
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            host = _host_source(source)
            return None if host is None else host / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not under any mounted volume: {volumes}")


def _compose_with(*overlays: str) -> dict[str, Any]:
    """Compose's merge of the base file with overlays: maps merged, volumes by target."""
    services = _compose()["services"]
    for name in overlays:
        for svc, extra in yaml.safe_load((DEPLOY / name).read_text())["services"].items():
            base = services[svc]
            base["environment"] = {**base.get("environment", {}), **extra.get("environment", {})}
            base["volumes"] = [*base.get("volumes", []), *extra.get("volumes", [])]
    return services


def test_compose_mounts_every_file_the_processors_read() -> None:
    services = _compose_with("docker-compose.model.yml")
    reads = {**READS, "classify": READS["classify"] | {"ADUAN_CLASSIFY_MODEL"}}
    for name, variables in reads.items():
        env, volumes = services[name]["environment"], services[name]["volumes"]
        for var in variables:
            host = _mounted_source(volumes, env[var])
            if host is not None:  # a default shipped in the repository
                assert host.is_file(), f"{name}: {var}={env[var]} mounts missing {host}"
    model_volume = services["classify"]["volumes"][-1]
    assert model_volume.startswith("${ADUAN_CLASSIFY_MODEL_SOURCE:?")  # no model, no start
    base = _compose()["services"]["classify"]
    assert "ADUAN_CLASSIFY_MODEL" not in base["environment"]  # optional: the overlay adds it


def test_kubernetes_mounts_every_file_the_processors_read() -> None:
    (cm,) = [d for d in _k8s_docs() if d["kind"] == "ConfigMap"]
    deployments = _workloads()
    readme = (K8S / "README.md").read_text()
    for name, variables in READS.items():
        (container,) = deployments[f"aduan-{name}"]["spec"]["template"]["spec"]["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        for var in variables:
            path = Path(cm["data"][var])
            assert mounts.get(str(path.parent)) == "config", (name, var, path)
            # the aduan-config ConfigMap is created with that file name (README)
            assert f"--from-file={path.name}=" in readme, (var, path.name)


def test_the_optional_model_component_mounts_a_volume_and_names_the_file() -> None:
    component = K8S / "classify-model"
    kustomization = yaml.safe_load((component / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Component"
    (pvc,) = [yaml.safe_load((component / r).read_text()) for r in kustomization["resources"]]
    assert pvc["kind"] == "PersistentVolumeClaim" and "ReadOnlyMany" in pvc["spec"]["accessModes"]
    (patch_ref,) = kustomization["patches"]
    patch = yaml.safe_load((component / patch_ref["path"]).read_text())
    deployments = {d["metadata"]["name"] for d in _k8s_docs() if d["kind"] == "Deployment"}
    assert patch["metadata"]["name"] in deployments
    spec = patch["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["name"] == "classify"
    env = {e["name"]: e["value"] for e in container["env"]}
    (mount,) = container["volumeMounts"]
    assert Path(env["ADUAN_CLASSIFY_MODEL"]).parent == Path(mount["mountPath"])
    (volume,) = spec["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert "classify-model" in (K8S / "kustomization.yaml").read_text()


def test_the_runbook_explains_the_mounted_files() -> None:
    runbook = (REPO / "docs" / "operations.md").read_text()
    section = runbook.split("## Deployment files", 1)[1].split("\n## ", 1)[0]
    for needle in (
        "ADUAN_REGISTRY_FILE", "ADUAN_ROUTE_SLA_FILE", "ADUAN_CLASSIFY_CONFIG",
        "ADUAN_CLASSIFY_MODEL", "docker-compose.model.yml", "classify-model",
        "ADUAN_CLASSIFY_CONFIG_SOURCE", "ADUAN_CLASSIFY_MODEL_SOURCE",
    ):  # fmt: skip
        assert needle in section, needle


# --- default paths ---------------------------------------------------------------------------
def test_default_config_paths_do_not_depend_on_the_working_directory(tmp_path: Path) -> None:
    code = (
        "from common.settings import Settings; from services.route.settings import "
        "RouteSettings; from services.classify.settings import ClassifySettings; "
        "print(Settings().registry_file, RouteSettings().sla_file, ClassifySettings().config)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADUAN_")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for path in map(Path, out.stdout.split()):
        assert path.is_absolute() and path.is_file(), path


def test_a_missing_config_file_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADUAN_")}
    env |= {"PYTHONPATH": str(REPO), "ADUAN_ROUTE_SLA_FILE": str(tmp_path / "sla.yaml")}
    out = subprocess.run(
        [sys.executable, "-m", "services.route"], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("route: ADUAN_ROUTE_SLA_FILE=") and "no such file" in line


# --- route's persistent state ----------------------------------------------------------------
def test_every_route_worker_keeps_its_table_on_its_own_persistent_volume() -> None:
    """RocksDB under ADUAN_ROUTE_DATA_DIR must outlive the pod, or every restart reads the
    whole changelog again: a claim per worker (volumeClaimTemplates), mounted there."""
    from services.route.settings import RouteSettings

    assert "data_dir" in RouteSettings.model_fields  # ADUAN_ROUTE_DATA_DIR
    route = _workloads()["aduan-route"]
    spec = route["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]  # one worker per volume
    assert claim["spec"]["resources"]["requests"]["storage"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["ADUAN_ROUTE_DATA_DIR"]
    assert claim["metadata"]["name"] not in {v["name"] for v in pod["volumes"]}  # not emptyDir
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]  # writable
    # the governing Service of the StatefulSet exists and is headless
    (service,) = [
        d for d in _k8s_docs() if d["kind"] == "Service" and d["metadata"]["name"] == "aduan-route"
    ]
    assert spec["serviceName"] == "aduan-route" and service["spec"]["clusterIP"] == "None"
    assert spec["replicas"] >= 2  # standby copies need a second worker


def test_compose_keeps_routes_table_on_a_named_volume() -> None:
    compose = _compose()
    route = compose["services"]["route"]
    data_dir = route["environment"]["ADUAN_ROUTE_DATA_DIR"]
    named = [v.split(":")[0] for v in route["volumes"] if v.split(":")[1] == data_dir]
    assert named == ["route-data"] and "route-data" in compose["volumes"]
    assert "./config:/app/deploy/config:ro" in route["volumes"]  # still mounts the config
    # the image creates the mount point for the service user: a new volume starts writable
    assert f"install -d -o aduan -g aduan {data_dir}" in (REPO / "Dockerfile").read_text()


def test_the_runbook_explains_routes_volume() -> None:
    runbook = (REPO / "docs" / "operations.md").read_text()
    section = runbook.split("## Deployment files", 1)[1].split("\n## ", 1)[0]
    for needle in ("ADUAN_ROUTE_DATA_DIR", "StatefulSet", "route-data", "volumeClaimTemplates"):
        assert needle in section, needle


# --- desk ----------------------------------------------------------------------------------
def test_compose_runs_the_desk_on_its_postgres_with_the_password_from_the_env_file() -> None:
    services = _compose()["services"]
    desk, postgres = services["desk"], services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert desk["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = desk["environment"]["ADUAN_DESK_DATABASE_URL"]
    assert url.startswith("postgresql://") and ":" not in url.split("//")[1].split("@")[0]
    assert "ADUAN_DESK_DATABASE_PASSWORD" in " ".join(postgres["entrypoint"])
    assert desk["ports"] == [f"{DESK_API_PORT}:{DESK_API_PORT}"]  # the ops port is not
    assert int(desk["environment"]["ADUAN_HTTP_PORT"]) == DESK_API_PORT
    example = (DEPLOY / "aduan.env.example").read_text()
    assert "ADUAN_DESK_DATABASE_PASSWORD=replace-me" in example


def test_the_desk_service_publishes_the_api_and_prometheus_scrapes_the_ops_port() -> None:
    docs = _k8s_docs()
    (service,) = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "aduan-desk"
    ]
    published = [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]]
    assert published == [(DESK_API_PORT, "api")]
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs["aduan-desk"] == [f"desk:{PROCESSORS['desk']}"]
