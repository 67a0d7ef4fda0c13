"""The Helm chart (helm/zoom-qss-exporter) and the container image (Dockerfile).

Renders the chart with a real helm 4 binary (scripts/install-helm puts it at .tools/helm) for the
default values and every ci/*-values.yaml, lints it, validates each rendering against the
Kubernetes schemas of kubernetes-validate (offline), and checks what matters: the hardened pod,
the secret token only through a Secret, only the webhook path in the Ingress, the labels that the
Prometheus operator and Grafana's sidecar select on, and the rules and dashboards identical to
the repository's top-level rules/ and dashboards/ (which the chart reads through links). The
image cannot be built here (no Docker engine): the Dockerfile is checked against the chart, and
the wheels its build stage makes are installed into a fresh virtualenv and run with the
environment the chart gives the container.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from prometheus_harness import free_port, serving
from zoom_qss_exporter import __version__
from zoom_qss_exporter.analytics.collector import MAX_ACCOUNT
from zoom_qss_exporter.analytics.flags import load_accounts
from zoom_qss_exporter.analytics.sites import MAX_NAME, SitesFile, load_sites
from zoom_qss_exporter.analytics.thresholds import DEFAULT_FILE, QualityThresholds, load_thresholds
from zoom_qss_exporter.config import Settings, add_serve_arguments, load_settings
from zoom_qss_exporter.flags import TOKEN_ENV, ConfigError, env_name
from zoom_qss_exporter.ingest.convert import ConvertOptions, UserNameMode
from zoom_qss_exporter.ingest.signature import sign_headers
from zoom_qss_exporter.remote.client import ParticipantInfo
from zoom_qss_exporter.remote.flags import DEFAULT_WAL_DIRECTORY
from zoom_qss_exporter.remote.wal import WALOptions
from zoom_qss_exporter.web.auth import MetricsAuth

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "zoom-qss-exporter"
DOCKERFILE = ROOT / "Dockerfile"
RELEASE = "zoom-qss"
NAMESPACE = "monitoring"
CI_VALUES = {path.name.removesuffix("-values.yaml"): path for path in (CHART / "ci").glob("*.yaml")}
CASES = ["default", *sorted(CI_VALUES)]
# Kinds of the Prometheus operator: kubernetes-validate has no schema for them, so they get
# structural checks of their own below.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Flags of `serve` that the chart sets differently on purpose.
NOT_IN_VALUES = {
    "--zoom.secret-token-file": f"the token reaches the container as {TOKEN_ENV} from a Secret",
}
# Where the chart mounts remote write's write-ahead log (--remote-write.wal-directory).
WAL_MOUNT = "/var/lib/zoom-qss-exporter/wal"
REMOTE_URL = "http://mimir.example.com/api/v1/push"
REMOTE = ["--set", f"config.remoteWrite.url={REMOTE_URL}"]
PERSISTENT = [*REMOTE, "--set", "config.remoteWrite.wal.persistence.enabled=true"]
WAL_ON_A_CLAIM = {"url": REMOTE_URL, "wal": {"persistence": {"enabled": True}}}
# The Secret the chart's Deployment waits for when no token is given.
WAITED_FOR = {f"{RELEASE}-zoom-qss-exporter/secret-token": "t"}
SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
# Where the chart mounts the quality analytics' files (its ConfigMap <fullname>-analytics).
ANALYTICS_MOUNT = "/etc/zoom-qss-exporter/analytics"
ANALYTICS_MAP = f"{RELEASE}-zoom-qss-exporter-analytics"
SITE_A = {"name": "A", "subnets": ["10.0.0.0/8"]}
SITE_B = {"name": "B", "subnets": ["11.0.0.0/8"]}
SHIPPED_QUALITY: dict[str, Any] = yaml.safe_load(DEFAULT_FILE.read_text())

Manifest = dict[str, Any]


def _helm_binary() -> str:
    local = ROOT / ".tools" / "helm"
    if os.access(local, os.X_OK):
        return str(local)
    found = shutil.which("helm")
    if found is None:
        pytest.fail(
            "helm is missing: run scripts/setup (it calls scripts/install-helm, which puts helm 4 "
            "at .tools/helm)"
        )
    return found


@dataclass
class Helm:
    binary: str
    env: dict[str, str]

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        if check and result.returncode != 0:
            command = shlex.join([self.binary, *map(str, args)])
            raise AssertionError(f"{command} failed:\n{result.stderr}")
        return result

    def template(self, *args: str | Path, chart: Path = CHART) -> list[Manifest]:
        out = self.run("template", RELEASE, chart, "--namespace", NAMESPACE, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def notes(self, *args: str | Path) -> str:
        out = self.run(
            "install", RELEASE, CHART, "--namespace", NAMESPACE, "--dry-run=client", *args
        ).stdout
        assert "\nNOTES:\n" in out, out
        return out.split("\nNOTES:\n", 1)[1]


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ)
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[name] = str(home / name.lower())
    return Helm(_helm_binary(), env)


def case_args(case: str) -> list[str | Path]:
    return [] if case == "default" else ["--values", CI_VALUES[case]]


def case_values(case: str) -> dict[str, Any]:
    if case == "default":
        return {}
    values: dict[str, Any] = yaml.safe_load(CI_VALUES[case].read_text())
    return values


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> dict[str, list[Manifest]]:
    return {case: helm.template(*case_args(case)) for case in CASES}


def of_kind(docs: list[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[Manifest], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(docs: list[Manifest]) -> Manifest:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: Manifest = containers[0]
    return found


def env_of(docs: list[Manifest]) -> dict[str, Manifest]:
    return {item["name"]: item for item in container(docs)["env"]}


def pod_volumes(docs: list[Manifest]) -> dict[str, Manifest]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    return {volume["name"]: volume for volume in pod["volumes"]}


def volume_mounts(docs: list[Manifest]) -> dict[str, Manifest]:
    return {mount["name"]: mount for mount in container(docs)["volumeMounts"]}


def chart_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return data


def default_values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return data


# --- the chart as a whole ------------------------------------------------------------------


def test_helm_is_version_4(helm: Helm) -> None:
    assert helm.run("version", "--short").stdout.startswith("v4."), "scripts/install-helm: helm 4"


def test_versions_agree() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    chart = chart_yaml()
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == pyproject["project"]["version"] == __version__
    assert dockerfile_args()["VERSION"] == chart["appVersion"]


@pytest.mark.parametrize("case", CASES)
def test_lint_strict(helm: Helm, case: str) -> None:
    result = helm.run("lint", "--strict", CHART, *case_args(case), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def _kube_versions() -> list[str]:
    """The oldest Kubernetes the chart claims (Chart.yaml kubeVersion) and the newest whose
    schemas kubernetes-validate bundles."""
    oldest = re.fullmatch(r">=\s*(\d+\.\d+)\.\d+(-0)?", chart_yaml()["kubeVersion"])
    assert oldest, "kubeVersion should read >=X.Y.Z-0"
    bundled = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    assert oldest.group(1) in bundled, f"kubernetes-validate has no schemas for {oldest.group(1)}"
    newest: str = kubernetes_validate.latest_version()
    return [oldest.group(1), newest]


def assert_valid(docs: list[Manifest]) -> None:
    """Every object but the Prometheus operator's passes the Kubernetes schemas."""
    for version in _kube_versions():
        for doc in docs:
            if doc["kind"] in CRD_KINDS:
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(map(str, error.path))
                pytest.fail(f"{doc['kind']} {where}: {error.message} (Kubernetes {version})")


@pytest.mark.parametrize("case", CASES)
def test_renderings_pass_kubernetes_schemas(rendered: dict[str, list[Manifest]], case: str) -> None:
    assert_valid(rendered[case])


def test_schema_validation_is_effective(rendered: dict[str, list[Manifest]]) -> None:
    deployment = json.loads(json.dumps(one(rendered["default"], "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, _kube_versions()[-1], strict=True)


@pytest.mark.parametrize("case", CASES)
def test_common_labels_and_namespace(rendered: dict[str, list[Manifest]], case: str) -> None:
    namespace = case_values(case).get("namespaceOverride") or NAMESPACE
    for doc in rendered[case]:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "zoom-qss-exporter", doc["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE, doc["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", doc["kind"]
        assert doc["metadata"]["namespace"] == namespace, doc["kind"]


def test_default_rendering_has_only_the_core_objects(rendered: dict[str, list[Manifest]]) -> None:
    kinds = sorted(doc["kind"] for doc in rendered["default"])
    assert kinds == ["Deployment", "Service", "ServiceAccount"]


def test_all_optional_parts_render(rendered: dict[str, list[Manifest]]) -> None:
    kinds = {doc["kind"] for doc in rendered["all-features"]}
    expected = {"Deployment", "Service", "ServiceAccount", "Secret", "Ingress"}
    expected |= {"PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PersistentVolumeClaim"}
    expected |= {"ConfigMap"}  # the analytics' files
    assert expected <= kinds
    if top_level_rule_groups():
        assert "PrometheusRule" in kinds
    if top_level_dashboards():
        assert "ConfigMap" in kinds


# --- the pod ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_pod_is_hardened(rendered: dict[str, list[Manifest]], case: str) -> None:
    docs = rendered[case]
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    user, group = dockerfile_user()
    assert pod["securityContext"]["runAsUser"] == user
    assert pod["securityContext"]["runAsGroup"] == group
    context = container(docs)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    for account in of_kind(docs, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == account["metadata"]["name"]
    if case == "default":
        assert "resources" not in container(docs), "resources are left for the user"


@pytest.mark.parametrize("case", CASES)
def test_probes_and_port(rendered: dict[str, list[Manifest]], case: str) -> None:
    docs = rendered[case]
    main = container(docs)
    port = {p["name"]: p for p in main["ports"]}["http"]
    expected_port = case_values(case).get("config", {}).get("web", {}).get("port", 9981)
    assert port["containerPort"] == expected_port
    internal = case_values(case).get("config", {}).get("web", {}).get("internalPort", 0)
    probe_port = "internal" if internal else "http"  # the main port serves the webhook only
    assert main["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": probe_port}
    assert main["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": probe_port}
    assert env_of(docs)["ZOOM_QSS_WEB_LISTEN_ADDRESS"]["value"] == f":{expected_port}"
    if internal:
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        assert ports["internal"] == internal
        service_ports = {p["name"]: p["targetPort"] for p in one(docs, "Service")["spec"]["ports"]}
        assert service_ports == {"http": "http", "internal": "internal"}
        for monitor in of_kind(docs, "ServiceMonitor"):
            assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["internal"]


def test_image_entrypoint_and_replicas(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["default"]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == SURGE
    main = container(docs)
    assert "command" not in main, "the image's ENTRYPOINT runs zoom-qss-exporter"
    assert main["args"] == dockerfile_exec_form("CMD") == ["serve"]
    assert main["image"] == f"zoom-qss-exporter:{chart_yaml()['appVersion']}"
    digest = container(rendered["all-features"])["image"]
    assert digest.startswith("registry.example.com/zoom/zoom-qss-exporter@sha256:")


def test_topology_spread_selects_the_pods(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["all-features"]
    pod = one(docs, "Deployment")["spec"]["template"]
    (constraint,) = pod["spec"]["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "topology.kubernetes.io/zone"
    selector = constraint["labelSelector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()


def test_pdb_and_network_policy_select_the_pods(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["all-features"]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [
        {"port": "http", "protocol": "TCP"},
        {"port": "internal", "protocol": "TCP"},  # all-features splits the listeners
    ]
    assert len(rule["from"]) == 2


# --- settings --------------------------------------------------------------------------------


def serve_flags() -> dict[str, str]:
    """Every flag of `zoom-qss-exporter serve`, with its environment variable."""
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, {})
    return {
        option: env_name(option)
        for action in parser._actions
        if action.dest != "help"
        for option in action.option_strings
        if option.startswith("--") and not option.startswith("--no-")
    }


def resolved_env(docs: list[Manifest], secrets: dict[str, str]) -> dict[str, str]:
    """The container's environment, with secretKeyRefs resolved from ``secrets``
    ("<secret>/<key>" -> value) or from a Secret the chart rendered."""
    data = {
        f"{s['metadata']['name']}/{key}": base64.b64decode(value).decode()
        for s in of_kind(docs, "Secret")
        for key, value in s.get("data", {}).items()
    }
    data.update(secrets)
    env: dict[str, str] = {}
    for name, item in env_of(docs).items():
        if "value" in item:
            env[name] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[name] = data[f"{ref['name']}/{ref['key']}"]
    return env


def config_map_files(docs: list[Manifest], volume: Manifest) -> dict[str, str]:
    """The files the kubelet puts in ``volume`` (a configMap or projected one) from the
    ConfigMaps in ``docs``; those of ConfigMaps the chart does not render are left out."""
    data = {m["metadata"]["name"]: m.get("data", {}) for m in of_kind(docs, "ConfigMap")}
    if "configMap" in volume:
        sources = [volume["configMap"]]
    else:
        projected = volume.get("projected", {}).get("sources", [])
        sources = [source["configMap"] for source in projected if "configMap" in source]
    files: dict[str, str] = {}
    for source in sources:
        if source["name"] not in data:
            continue
        keys = data[source["name"]]
        items = source.get("items") or [{"key": key, "path": key} for key in keys]
        files.update({item["path"]: keys[item["key"]] for item in items})
    return files


def write_like_the_kubelet(directory: Path, files: dict[str, str], generation: int = 1) -> None:
    """``files`` in ``directory`` as the kubelet's atomic writer lays out a ConfigMap volume:
    in a directory of their own that the link ``..data`` points at, each visible file a link
    through ``..data``. A later generation replaces ``..data`` in one rename and removes the
    previous directory, as an update of the ConfigMap does."""
    directory.mkdir(parents=True, exist_ok=True)
    payload = directory / f"..generation_{generation}"
    payload.mkdir()
    for name, text in files.items():
        (payload / name).write_text(text, encoding="utf-8")
    previous = (directory / "..data").resolve() if (directory / "..data").is_symlink() else None
    staged = directory / "..data_tmp"
    staged.symlink_to(payload.name)
    staged.replace(directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(Path("..data") / name)
    if previous is not None:
        shutil.rmtree(previous)


def stand_in_volumes(
    docs: list[Manifest], env: dict[str, str], volumes: Path, only: set[str] | None = None
) -> dict[str, str]:
    """``env`` with each volume the chart mounts (or those named in ``only``) standing in as a
    directory under ``volumes``, paths in ``env`` following; the files of the chart's ConfigMaps
    are in theirs, laid out as the kubelet does."""
    env = dict(env)
    for mount in container(docs)["volumeMounts"]:
        if only is not None and mount["name"] not in only:
            continue
        local = volumes / mount["name"]
        files = config_map_files(docs, pod_volumes(docs)[mount["name"]])
        if files:
            write_like_the_kubelet(local, files)
        else:
            local.mkdir(parents=True)
        for name, value in env.items():
            if value == mount["mountPath"] or value.startswith(mount["mountPath"] + "/"):
                env[name] = str(local) + value.removeprefix(mount["mountPath"])
    return env


def test_every_serve_flag_is_reachable_from_values(rendered: dict[str, list[Manifest]]) -> None:
    # all-features, and the ci files of settings that exclude each other (bearer token / basic auth)
    env = {name for case in CASES for name in env_of(rendered[case])}
    missing = {
        flag: variable
        for flag, variable in serve_flags().items()
        if variable not in env and flag not in NOT_IN_VALUES
    }
    assert not missing, f"serve flags with no value in the chart (values.yaml config.*): {missing}"


def test_chart_defaults_are_the_exporters_defaults(
    helm: Helm, rendered: dict[str, list[Manifest]]
) -> None:
    docs = rendered["default"]
    env = resolved_env(docs, WAITED_FOR)
    assert load_settings([], env) == load_settings([], {TOKEN_ENV: "t"})
    # With remote write on, config.remoteWrite's defaults are the exporter's too, but for the
    # write-ahead log's directory: the exporter's is relative to the working directory (in the
    # image /, read-only and not the user's), the chart's is the volume it mounts.
    exporter = load_settings([], {TOKEN_ENV: "t", env_name("--remote-write.url"): REMOTE_URL})
    assert exporter.wal == WALOptions(DEFAULT_WAL_DIRECTORY)
    assert not DEFAULT_WAL_DIRECTORY.startswith("/")
    chart = load_settings([], resolved_env(helm.template(*REMOTE), WAITED_FOR))
    assert chart == replace(exporter, wal=WALOptions(WAL_MOUNT))


def test_all_features_settings_reach_the_exporter(
    rendered: dict[str, list[Manifest]], tmp_path: Path
) -> None:
    metrics_user = {"zoom-qss-metrics/username": "prometheus"}
    docs = rendered["all-features"]
    # The analytics' files are read at start: from the chart's ConfigMap, laid out as the kubelet
    # does in a directory standing in for the volume.
    env = stand_in_volumes(docs, resolved_env(docs, metrics_user), tmp_path, only={"analytics"})
    settings = load_settings([], env)
    assert settings.zoom.secret_tokens == ("ci-token-one", "ci-token-two")
    assert settings.web.internal_listen == ("", 9101)
    assert (settings.web.read_timeout, settings.web.unauthenticated_rate_limit) == (5, 2.5)
    assert settings.web.metrics_auth == MetricsAuth(
        username="prometheus",
        bearer_token_file="/etc/zoom-qss-exporter/metrics-auth/token",
        password_file="/etc/zoom-qss-exporter/metrics-auth/password",
    )
    assert settings.log.format == "json"
    assert (settings.web.host, settings.web.port) == ("", 9100)
    assert (settings.web.telemetry_path, settings.web.webhook_path) == (
        "/internal/metrics",
        "/zoom/events",
    )
    assert settings.web.max_request_bytes == 2097152
    assert settings.web.metrics_cache == 0.5
    assert settings.zoom.replay_window == 120
    assert (settings.store.ttl, settings.store.summary_ttl, settings.store.dedup_window) == (
        180,
        7200,
        7200,
    )
    assert (settings.store.max_series, settings.store.per_participant) == (250000, False)
    assert settings.privacy == ConvertOptions(user_name=UserNameMode.HASH, hash_salt="ci-salt")
    assert settings.log.level == "debug"
    assert container(rendered["all-features"])["args"][1:] == ["--web.max-request-bytes=2097152"]
    remote = settings.remote_write
    assert remote is not None and remote.url == "https://mimir.example.com/api/v1/push"
    assert remote.headers == (("X-Scope-OrgID", "zoom"), ("X-Team", "collaboration"))
    assert remote.basic_auth_username == "zoom-qss"
    files = "/etc/zoom-qss-exporter/remote-write/"
    assert remote.basic_auth_password_file == files + "password"
    assert (remote.tls_ca_file, remote.tls_cert_file, remote.tls_key_file) == (
        files + "ca.crt",
        files + "tls.crt",
        files + "tls.key",
    )
    assert remote.tls_insecure_skip_verify and not remote.bearer_token_file
    assert (remote.timeout, remote.queue_capacity, remote.batch_size) == (20, 100000, 1000)
    assert (remote.flush_interval, remote.min_backoff, remote.max_backoff) == (2, 0.1, 30)
    assert (remote.shutdown_timeout, remote.retry_budget) == (10, 120)
    assert remote.participant_info is ParticipantInfo.EVENT  # not the default
    assert settings.wal == WALOptions(WAL_MOUNT, fsync=False)
    archive = settings.archive
    assert archive is not None and archive.directory == "/var/lib/zoom-qss-exporter/archive"
    assert (archive.max_bytes, archive.max_files) == (1048576, 5)
    analytics = settings.analytics
    assert analytics is not None
    assert analytics.sites_file == tmp_path / "analytics" / "sites.yaml"
    assert (analytics.max_rows, analytics.max_participants) == (5000, 100000)
    assert analytics.accounts == {"AbCdEf123456": "Europe", "0123456789": "Asia"}
    assert analytics.thresholds == QualityThresholds(
        latency=0.3, jitter=0.025, packet_loss=0.05, mos=3.6, wifi_rssi_dbm=-67, cpu_usage=0.85
    )
    sites = load_sites(analytics.sites_file)
    assert sites.names == ["Paris HQ", "Paris Lab", "Tokyo"]
    assert sites.match(["10.20.30.7"], "") == ("Paris Lab", 0)
    assert sites.match(["10.20.1.1"], "") == ("Paris HQ", 0)
    assert sites.match([], "fd00:1::5") == ("Tokyo", 0)


def test_remote_write_files_come_from_the_named_secrets(
    rendered: dict[str, list[Manifest]],
) -> None:
    pod = one(rendered["all-features"], "Deployment")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    sources = volumes["remote-write"]["projected"]["sources"]
    assert sources == [
        {"secret": {"name": "mimir-credentials", "items": [{"key": "pass", "path": "password"}]}},
        {
            "secret": {
                "name": "mimir-tls",
                "items": [
                    {"key": "ca.pem", "path": "ca.crt"},
                    {"key": "client.pem", "path": "tls.crt"},
                    {"key": "client-key.pem", "path": "tls.key"},
                ],
            }
        },
    ]
    assert volumes["archive"]["persistentVolumeClaim"] == {"claimName": "zoom-qss-archive"}
    mounts = {m["name"]: m for m in container(rendered["all-features"])["volumeMounts"]}
    assert mounts["remote-write"]["readOnly"] is True
    assert mounts["archive"]["mountPath"] == "/var/lib/zoom-qss-exporter/archive"
    docs = rendered["remote-write"]
    settings = load_settings([], resolved_env(docs, {}))
    assert settings.remote_write is not None and not settings.store.per_participant
    assert (
        settings.remote_write.bearer_token_file
        == "/etc/zoom-qss-exporter/remote-write/bearer-token"
    )
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert settings.archive is not None
    default = one(rendered["default"], "Deployment")["spec"]["template"]["spec"]
    assert [v["name"] for v in default["volumes"]] == ["tmp"], "nothing of it by default"


def test_demo_runs_without_token_or_verification(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["demo"]
    assert TOKEN_ENV not in env_of(docs)
    assert not of_kind(docs, "Secret") and not of_kind(docs, "ServiceAccount")
    settings = load_settings([], resolved_env(docs, {}))
    assert settings.zoom.skip_signature_verification and not settings.store.per_participant


# --- remote write's write-ahead log ------------------------------------------------------------


def test_each_replica_keeps_its_log_on_an_empty_dir(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["remote-write"]
    assert pod_volumes(docs)["wal"] == {"name": "wal", "emptyDir": {"sizeLimit": "1Gi"}}
    assert volume_mounts(docs)["wal"] == {"name": "wal", "mountPath": WAL_MOUNT}
    assert not of_kind(docs, "PersistentVolumeClaim")
    settings = load_settings([], resolved_env(docs, {}))
    assert settings.wal == WALOptions(WAL_MOUNT, fsync=True)
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3, "an emptyDir is each pod's own"
    assert deployment["spec"]["strategy"] == SURGE


def test_all_features_keep_the_log_on_a_claim_of_the_chart(
    rendered: dict[str, list[Manifest]],
) -> None:
    docs = rendered["all-features"]
    claim = one(docs, "PersistentVolumeClaim")
    name = f"{RELEASE}-zoom-qss-exporter-wal"
    assert claim["metadata"]["name"] == name
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOncePod"],
        "storageClassName": "fast-ssd",
        "resources": {"requests": {"storage": "5Gi"}},
    }
    assert pod_volumes(docs)["wal"] == {"name": "wal", "persistentVolumeClaim": {"claimName": name}}
    assert volume_mounts(docs)["wal"] == {"name": "wal", "mountPath": WAL_MOUNT}
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "a surge pod could not mount it"


@pytest.mark.parametrize(
    ("args", "claim", "spec"),
    [
        (
            [],
            f"{RELEASE}-zoom-qss-exporter-wal",
            {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
        ),
        (
            ["--set", "config.remoteWrite.wal.persistence.storageClassName=-"],
            f"{RELEASE}-zoom-qss-exporter-wal",
            {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "resources": {"requests": {"storage": "2Gi"}},
            },
        ),
        (
            ["--set", "config.remoteWrite.wal.persistence.existingClaim=zoom-qss-wal"],
            "zoom-qss-wal",
            None,
        ),
    ],
    ids=["defaults", "no-provisioning", "existing-claim"],
)
def test_the_log_on_a_claim(
    helm: Helm, args: list[str], claim: str, spec: dict[str, Any] | None
) -> None:
    docs = helm.template(*PERSISTENT, *args)
    assert_valid(docs)
    claims = of_kind(docs, "PersistentVolumeClaim")
    if spec is None:
        assert not claims, "the user's own claim"
    else:
        assert [c["metadata"]["name"] for c in claims] == [claim]
        assert claims[0]["spec"] == spec
        assert "annotations" not in claims[0]["metadata"]
    assert pod_volumes(docs)["wal"] == {
        "name": "wal",
        "persistentVolumeClaim": {"claimName": claim},
    }
    assert volume_mounts(docs)["wal"]["mountPath"] == WAL_MOUNT
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert load_settings([], resolved_env(docs, WAITED_FOR)).wal == WALOptions(WAL_MOUNT)


@pytest.mark.parametrize(
    "values",
    [
        {"strategy": {"type": "Recreate"}},
        {
            "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "config": {"remoteWrite": WAL_ON_A_CLAIM},
        },
        {
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 1},
            },
            "config": {"remoteWrite": WAL_ON_A_CLAIM},
        },
    ],
    ids=["recreate", "claim-no-surge", "claim-no-surge-percent"],
)
def test_a_strategy_of_the_users_is_kept(
    helm: Helm, tmp_path: Path, values: dict[str, Any]
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    deployment = one(helm.template("--values", path), "Deployment")
    assert deployment["spec"]["strategy"] == values["strategy"]


@pytest.mark.parametrize(
    "args",
    [[], ["--set", "config.remoteWrite.wal.persistence.enabled=true"]],
    ids=["defaults", "persistence-without-url"],
)
def test_no_log_and_no_volume_without_remote_write(helm: Helm, args: list[str]) -> None:
    docs = helm.template(*args)
    assert not of_kind(docs, "PersistentVolumeClaim")
    assert list(pod_volumes(docs)) == ["tmp"]
    assert list(volume_mounts(docs)) == ["tmp"]
    assert not [name for name in env_of(docs) if name.startswith("ZOOM_QSS_REMOTE_WRITE")]
    assert one(docs, "Deployment")["spec"]["strategy"] == SURGE
    settings = load_settings([], resolved_env(docs, WAITED_FOR))
    assert settings.remote_write is None and settings.wal is None


def test_the_log_turned_off_reaches_the_exporter_and_mounts_nothing(helm: Helm) -> None:
    docs = helm.template(*PERSISTENT, "--set", "config.remoteWrite.wal.enabled=false")
    env = env_of(docs)
    assert env["ZOOM_QSS_REMOTE_WRITE_WAL"]["value"] == "false"
    assert "ZOOM_QSS_REMOTE_WRITE_WAL_DIRECTORY" not in env
    assert not of_kind(docs, "PersistentVolumeClaim")
    assert list(pod_volumes(docs)) == ["tmp"]
    assert one(docs, "Deployment")["spec"]["strategy"] == SURGE
    settings = load_settings([], resolved_env(docs, WAITED_FOR))
    assert settings.remote_write is not None and settings.wal is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], None),
        (
            REMOTE,
            "on an emptyDir: it outlives a restart of the container (a crash, an OOM kill), "
            "not the pod",
        ),
        (
            PERSISTENT,
            f"on PersistentVolumeClaim {RELEASE}-zoom-qss-exporter-wal: it outlives the pod",
        ),
        (
            [*REMOTE, "--set", "config.remoteWrite.wal.enabled=false"],
            "WARNING: no write-ahead log (config.remoteWrite.wal.enabled=false)",
        ),
    ],
    ids=["pull", "empty-dir", "claim", "off"],
)
def test_notes_say_what_the_log_survives(helm: Helm, args: list[str], says: str | None) -> None:
    notes = " ".join(helm.notes(*args).split())
    if says is None:
        assert "Remote write" not in notes
    else:
        assert says in notes


# --- quality analytics -------------------------------------------------------------------------


def render_values(helm: Helm, tmp_path: Path, values: dict[str, Any]) -> list[Manifest]:
    """The chart rendered with ``values``, written as JSON: PyYAML's YAML 1.1 leaves strings
    such as 1e3 unquoted, which helm's YAML 1.2 reads as numbers."""
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    return helm.template("--values", path)


def with_analytics(**analytics: Any) -> dict[str, Any]:
    return {"secretToken": "t", "config": {"analytics": analytics}}


def all_features_analytics() -> dict[str, Any]:
    analytics: dict[str, Any] = case_values("all-features")["config"]["analytics"]
    return analytics


def analytics_files(docs: list[Manifest]) -> dict[str, str]:
    return dict(one(docs, "ConfigMap")["data"]) if of_kind(docs, "ConfigMap") else {}


def analytics_annotation(docs: list[Manifest]) -> str | None:
    template = one(docs, "Deployment")["spec"]["template"]["metadata"]
    checksum: str | None = template.get("annotations", {}).get("checksum/analytics")
    return checksum


# Values that YAML 1.1 (the exporter's PyYAML) would read as something else than they are if
# written unquoted; the longest name; surrounding spaces, which the exporter strips; the bounds
# of every threshold and one so small that JSON writes it with an exponent.
TRICKY_ANALYTICS: dict[str, Any] = {
    "sites": [
        {"name": "=", "subnets": ["10.0.0.0/8"]},
        {"name": "<<", "subnets": ["10.1.0.0/16"]},
        {"name": "yes", "subnets": ["192.0.2.0/24"]},
        {"name": "010", "subnets": ["198.51.100.0/24"]},
        {"name": "1e3", "subnets": ["203.0.113.0/24"]},
        {"name": "~", "subnets": ["2001:db8::/32"]},
        {"name": 'Zürich <Büro> & "Co": #1', "subnets": ["fd00::/8", "100.64.0.0/10"]},
        {"name": "x" * MAX_NAME, "subnets": ["172.16.0.0/12"]},
        {"name": "  padded  ", "subnets": [" 169.254.0.0/16 "]},
    ],
    "accounts": [
        {"id": "0123", "name": "no"},
        {"id": "true", "name": "Zürich <Büro> & Co"},
        {"id": "=", "name": "y" * MAX_ACCOUNT},
    ],
    "thresholds": {
        "poor": {"latency": 0.0000001, "jitter": 60, "packet_loss": 0, "mos": 1},
        "cause": {"wifi_rssi_dbm": -120, "cpu_usage": 1},
    },
}


@pytest.mark.parametrize(
    "analytics",
    [TRICKY_ANALYTICS, all_features_analytics()],
    ids=["tricky", "all-features"],
)
def test_analytics_files_are_what_the_exporter_reads(
    helm: Helm, tmp_path: Path, analytics: dict[str, Any]
) -> None:
    docs = render_values(helm, tmp_path, with_analytics(**analytics))
    assert_valid(docs)
    config_map = one(docs, "ConfigMap")
    assert config_map["metadata"]["name"] == ANALYTICS_MAP
    assert sorted(config_map["data"]) == ["accounts.yaml", "quality.yaml", "sites.yaml"]
    env = stand_in_volumes(docs, resolved_env(docs, {}), tmp_path / "volumes")
    directory = tmp_path / "volumes" / "analytics"

    # Each file through the exporter's own loader.
    sites = load_sites(directory / "sites.yaml")
    assert sites.names == [site["name"].strip() for site in analytics["sites"]]
    for site in analytics["sites"]:
        for subnet in site["subnets"]:
            network = ipaddress.ip_network(subnet.strip())
            found = sites.lookup(network.network_address)
            assert found == (site["name"].strip(), network.prefixlen), subnet
    accounts = {account["id"]: account["name"] for account in analytics["accounts"]}
    assert load_accounts(directory / "accounts.yaml") == accounts
    numbers = {k: v for section in analytics["thresholds"].values() for k, v in section.items()}
    thresholds = QualityThresholds(**{k: float(v) for k, v in numbers.items()})
    assert load_thresholds(directory / "quality.yaml") == thresholds

    # And through the settings, from the container's environment.
    settings = load_settings([], env).analytics
    assert settings is not None
    assert settings.sites_file == directory / "sites.yaml"
    assert (settings.accounts, settings.thresholds) == (accounts, thresholds)


def test_analytics_defaults_render_no_file(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["default"]
    analytics = {k: v["value"] for k, v in env_of(docs).items() if "ANALYTICS" in k}
    assert analytics == {
        "ZOOM_QSS_ANALYTICS_ENABLED": "true",
        "ZOOM_QSS_ANALYTICS_MAX_ROWS": "10000",
        "ZOOM_QSS_ANALYTICS_MAX_PARTICIPANTS": "500000",
    }
    assert not of_kind(docs, "ConfigMap") and "analytics" not in pod_volumes(docs)
    assert analytics_annotation(docs) is None


def test_analytics_off_renders_nothing_of_it(helm: Helm, tmp_path: Path) -> None:
    docs = render_values(helm, tmp_path, with_analytics(enabled=False, **TRICKY_ANALYTICS))
    analytics = {k: v["value"] for k, v in env_of(docs).items() if "ANALYTICS" in k}
    assert analytics == {"ZOOM_QSS_ANALYTICS_ENABLED": "false"}
    assert not of_kind(docs, "ConfigMap") and "analytics" not in pod_volumes(docs)
    assert analytics_annotation(docs) is None
    assert load_settings([], resolved_env(docs, {})).analytics is None


def test_the_analytics_files_are_a_directory_mount(rendered: dict[str, list[Manifest]]) -> None:
    """A directory, not a subPath: the kubelet updates a ConfigMap's files in place only then."""
    docs = rendered["all-features"]
    assert volume_mounts(docs)["analytics"] == {
        "name": "analytics",
        "mountPath": ANALYTICS_MOUNT,
        "readOnly": True,
    }
    assert pod_volumes(docs)["analytics"] == {
        "name": "analytics",
        "projected": {"sources": [{"configMap": {"name": ANALYTICS_MAP}}]},
    }
    env = {
        k: v["value"] for k, v in env_of(docs).items() if k.endswith("_FILE") and "ANALYTICS" in k
    }
    assert env == {
        "ZOOM_QSS_ANALYTICS_SITES_FILE": f"{ANALYTICS_MOUNT}/sites.yaml",
        "ZOOM_QSS_ANALYTICS_ACCOUNTS_FILE": f"{ANALYTICS_MOUNT}/accounts.yaml",
        "ZOOM_QSS_ANALYTICS_THRESHOLDS_FILE": f"{ANALYTICS_MOUNT}/quality.yaml",
    }


def test_sites_change_without_a_restart_accounts_and_thresholds_with_one(
    helm: Helm, tmp_path: Path
) -> None:
    base = all_features_analytics()
    docs = render_values(helm, tmp_path, with_analytics(**base))
    checksum = analytics_annotation(docs)
    assert checksum is not None and re.fullmatch(r"[0-9a-f]{64}", checksum)

    more_sites = [*base["sites"], {"name": "Lyon", "subnets": ["10.30.0.0/16"]}]
    changed = render_values(helm, tmp_path, with_analytics(**{**base, "sites": more_sites}))
    assert analytics_files(changed)["sites.yaml"] != analytics_files(docs)["sites.yaml"]
    assert one(changed, "Deployment") == one(docs, "Deployment"), "no rollout for the sites"

    renamed = [{**base["accounts"][0], "name": "EMEA"}, *base["accounts"][1:]]
    stricter = {**base["thresholds"], "poor": {**base["thresholds"]["poor"], "mos": 3.8}}
    for change in ({"accounts": renamed}, {"thresholds": stricter}):
        other = render_values(helm, tmp_path, with_analytics(**{**base, **change}))
        assert analytics_annotation(other) not in {None, checksum}, change

    sites_only = render_values(helm, tmp_path, with_analytics(sites=base["sites"]))
    assert analytics_annotation(sites_only) is None
    assert sorted(analytics_files(sites_only)) == ["sites.yaml"]


def test_a_configmap_update_reloads_the_sites(helm: Helm, tmp_path: Path) -> None:
    """What the kubelet does to the mounted directory when the ConfigMap changes (a new
    directory of files, then the ..data link swapped) is a change the exporter sees."""
    sites = all_features_analytics()["sites"]
    docs = render_values(helm, tmp_path, with_analytics(sites=sites))
    env = stand_in_volumes(docs, resolved_env(docs, {}), tmp_path / "volumes")
    path = Path(env["ZOOM_QSS_ANALYTICS_SITES_FILE"])
    assert path.is_symlink()
    in_force = SitesFile(path)
    in_force.load(now=0)
    assert in_force.sites.names == ["Paris HQ", "Paris Lab", "Tokyo"]
    assert not in_force.reload_if_changed(now=1)

    more = [*sites, {"name": "Lyon", "subnets": ["10.30.0.0/16"]}]
    update = analytics_files(render_values(helm, tmp_path, with_analytics(sites=more)))
    write_like_the_kubelet(path.parent, update, generation=2)
    assert in_force.reload_if_changed(now=2)
    assert in_force.sites.names == ["Paris HQ", "Paris Lab", "Tokyo", "Lyon"]
    assert in_force.reloads == {"success": 1, "failure": 0}


def test_sites_from_a_configmap_of_the_users(helm: Helm, tmp_path: Path) -> None:
    mine = {"existingSitesConfigMap": "office-sites", "existingSitesConfigMapKey": "ranges.yaml"}
    theirs = {
        "configMap": {
            "name": "office-sites",
            "items": [{"key": "ranges.yaml", "path": "sites.yaml"}],
        }
    }
    docs = render_values(helm, tmp_path, with_analytics(**mine))
    assert_valid(docs)
    assert not of_kind(docs, "ConfigMap") and analytics_annotation(docs) is None
    assert pod_volumes(docs)["analytics"]["projected"]["sources"] == [theirs]
    assert volume_mounts(docs)["analytics"]["mountPath"] == ANALYTICS_MOUNT
    env = env_of(docs)
    assert env["ZOOM_QSS_ANALYTICS_SITES_FILE"]["value"] == f"{ANALYTICS_MOUNT}/sites.yaml"
    assert "ZOOM_QSS_ANALYTICS_ACCOUNTS_FILE" not in env

    accounts = all_features_analytics()["accounts"]
    docs = render_values(helm, tmp_path, with_analytics(**mine, accounts=accounts))
    assert_valid(docs)
    assert sorted(analytics_files(docs)) == ["accounts.yaml"]
    assert pod_volumes(docs)["analytics"]["projected"]["sources"] == [
        {"configMap": {"name": ANALYTICS_MAP}},
        theirs,
    ]
    assert analytics_annotation(docs) is not None


def test_analytics_schema_bounds_are_the_exporters(tmp_path: Path) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    analytics = schema["properties"]["config"]["properties"]["analytics"]["properties"]
    site = analytics["sites"]["items"]["properties"]
    account = analytics["accounts"]["items"]["properties"]
    assert (site["name"]["maxLength"], account["name"]["maxLength"]) == (MAX_NAME, MAX_ACCOUNT)
    shipped = yaml.safe_load(DEFAULT_FILE.read_text())
    sections = analytics["thresholds"]["properties"]
    assert set(sections) == set(shipped)
    for section, node in sections.items():
        assert set(node["properties"]) == set(shipped[section]) == set(node["required"])
        for key, bounds in node["properties"].items():
            low, high = bounds["minimum"], bounds["maximum"]
            for value, accepted in (
                (low, True),
                (high, True),
                (low - 0.01, False),
                (high + 0.01, False),
            ):
                copy = {**shipped, section: {**shipped[section], key: value}}
                path = tmp_path / "quality.yaml"
                path.write_text(yaml.safe_dump(copy))
                if accepted:
                    load_thresholds(path)
                else:
                    with pytest.raises(ConfigError):
                        load_thresholds(path)


def commented_example(key: str) -> Any:
    """The example of config.analytics.<key> in values.yaml's comments."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    start = lines.index(f"    ## {key}:")
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    ##   "):
            break
        block.append(line)
    return yaml.safe_load("\n".join(line.removeprefix("    ## ") for line in block))[key]


def test_the_examples_in_values_yaml_work(helm: Helm, tmp_path: Path) -> None:
    examples = {key: commented_example(key) for key in ("sites", "accounts", "thresholds")}
    docs = render_values(helm, tmp_path, with_analytics(**examples))
    stand_in_volumes(docs, resolved_env(docs, {}), tmp_path / "volumes")
    directory = tmp_path / "volumes" / "analytics"
    assert load_sites(directory / "sites.yaml").names == [s["name"] for s in examples["sites"]]
    assert load_accounts(directory / "accounts.yaml")
    # the thresholds shown are the shipped ones
    assert load_thresholds(directory / "quality.yaml") == load_thresholds()


def test_kubernetes_doc_analytics_example_works(helm: Helm, tmp_path: Path) -> None:
    page = (ROOT / "docs" / "kubernetes.md").read_text()
    section = page.split("\n## Quality analytics\n", 1)[1]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    docs = render_values(helm, tmp_path, {"secretToken": "t", **example})
    env = stand_in_volumes(docs, resolved_env(docs, {}), tmp_path / "volumes")
    analytics = load_settings([], env).analytics
    assert analytics is not None and analytics.accounts == {"AbCdEf123456": "Europe"}
    assert analytics.sites_file is not None
    assert load_sites(analytics.sites_file).names == ["Paris HQ", "Tokyo"]
    assert "ZOOM_QSS_ANALYTICS_THRESHOLDS_FILE" not in env, "empty: the shipped file"


# --- the secret token ------------------------------------------------------------------------


def _secret_ref(docs: list[Manifest], variable: str) -> Manifest:
    item = env_of(docs)[variable]
    assert set(item) == {"name", "valueFrom"}, f"{variable} must come from a Secret only"
    ref: Manifest = item["valueFrom"]["secretKeyRef"]
    return ref


@pytest.mark.parametrize("case", CASES)
def test_token_only_through_a_secret(
    helm: Helm, rendered: dict[str, list[Manifest]], case: str
) -> None:
    docs = rendered[case]
    values = case_values(case)
    secrets = [v for v in (values.get("secretToken"), _salt(values)) if v]
    leaks = {s for secret in secrets for s in _forms(secret)}
    outside_secrets = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
    for secret in of_kind(docs, "Secret"):
        outside_secrets += yaml.safe_dump(secret["metadata"])
    notes = helm.notes(*case_args(case))
    for leak in leaks:
        assert leak not in outside_secrets, f"{leak!r} outside a Secret's data"
        assert leak not in notes, f"{leak!r} in NOTES"
    if TOKEN_ENV in env_of(docs):
        ref = _secret_ref(docs, TOKEN_ENV)
        if values.get("existingSecret"):
            key = values.get("existingSecretKey", default_values()["existingSecretKey"])
            assert ref == {"name": values["existingSecret"], "key": key}
            assert not of_kind(docs, "Secret")
        else:
            assert ref == {"name": f"{RELEASE}-zoom-qss-exporter", "key": "secret-token"}
    if _salt(values):
        salt = _secret_ref(docs, "ZOOM_QSS_PRIVACY_HASH_SALT")
        assert salt == {"name": f"{RELEASE}-zoom-qss-exporter", "key": "hash-salt"}


def _salt(values: dict[str, Any]) -> str | None:
    salt: str | None = values.get("config", {}).get("privacy", {}).get("hashSalt")
    return salt


def _forms(secret: str) -> set[str]:
    """The secret, its parts when comma-separated, and their base64."""
    parts = {secret, *secret.split(",")}
    return parts | {base64.b64encode(p.encode()).decode() for p in parts}


def test_created_secret_and_its_checksum(helm: Helm, rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["ingress-tls"]
    secret = one(docs, "Secret")
    assert secret["data"] == {"secret-token": base64.b64encode(b"ci-token").decode()}
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    checksum = annotations["checksum/secret"]
    assert re.fullmatch(r"[0-9a-f]{64}", checksum)
    for form in _forms("ci-token"):
        assert checksum != hashlib.sha256(form.encode()).hexdigest()
    other = helm.template(*case_args("ingress-tls"), "--set", "secretToken=another-token")
    changed = one(other, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert changed["checksum/secret"] != checksum, "a new token must restart the pod"


def test_no_token_waits_for_a_secret_named_in_notes(
    helm: Helm, rendered: dict[str, list[Manifest]]
) -> None:
    docs = rendered["default"]
    assert not of_kind(docs, "Secret")
    ref = _secret_ref(docs, TOKEN_ENV)
    assert ref == {"name": f"{RELEASE}-zoom-qss-exporter", "key": "secret-token"}
    notes = helm.notes()
    assert f"create secret generic {ref['name']}" in notes
    assert "--from-literal=secret-token=" in notes


def test_existing_secret_carries_the_hash_salt(rendered: dict[str, list[Manifest]]) -> None:
    docs = rendered["existing-secret"]
    assert _secret_ref(docs, TOKEN_ENV) == {"name": "zoom-qss-credentials", "key": "token"}
    salt = _secret_ref(docs, "ZOOM_QSS_PRIVACY_HASH_SALT")
    assert salt == {"name": "zoom-qss-credentials", "key": "salt"}
    assert env_of(docs)["ZOOM_QSS_PRIVACY_USER_NAME"]["value"] == "hash"
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    assert "checksum/secret" not in annotations


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"secretToken": "a", "existingSecret": "b"}, "either secretToken or existingSecret"),
        ({"config": {"privacy": {"hashSalt": "s"}}}, "secretToken is empty"),
        (
            {"existingSecret": "b", "config": {"privacy": {"hashSalt": "s"}}},
            "existingSecretHashSaltKey",
        ),
        ({"config": {"privacy": {"existingSecretHashSaltKey": "k"}}}, "needs existingSecret"),
        (
            {"podDisruptionBudget": {"enabled": True, "minAvailable": 1}},
            "exactly one of minAvailable and maxUnavailable",
        ),
        ({"replicaCount": 2}, "set config.remoteWrite.url"),
        (
            {"replicaCount": 2, "config": {"remoteWrite": WAL_ON_A_CLAIM}},
            "config.remoteWrite.wal.persistence needs replicaCount: 1: each exporter process "
            "needs a write-ahead log of its own",
        ),
        (
            {"strategy": {"type": "RollingUpdate"}, "config": {"remoteWrite": WAL_ON_A_CLAIM}},
            "a RollingUpdate with a surge pod starts the new pod while the old one still uses",
        ),
        (
            {"strategy": SURGE["rollingUpdate"], "config": {"remoteWrite": WAL_ON_A_CLAIM}},
            "a RollingUpdate with a surge pod",
        ),
        (
            {
                "config": {
                    "remoteWrite": {
                        "url": "http://m/api/v1/push",
                        "bearerToken": {"secretName": "t"},
                        "basicAuth": {"username": "u"},
                    }
                }
            },
            "either bearerToken.secretName or basicAuth",
        ),
        (
            {"config": {"analytics": {"sites": [SITE_A, {**SITE_B, "name": " A "}]}}},
            'config.analytics.sites: site "A" is given twice',
        ),
        (
            {"config": {"analytics": {"sites": [{**SITE_A, "name": "Other"}]}}},
            'config.analytics.sites: "Other" is reserved',
        ),
        (
            {"config": {"analytics": {"accounts": [{"id": "a", "name": "A"}] * 2}}},
            'config.analytics.accounts: id "a" is given twice',
        ),
        (
            {"config": {"analytics": {"sites": [SITE_A], "existingSitesConfigMap": "mine"}}},
            "config.analytics: set either sites or existingSitesConfigMap, not both",
        ),
    ],
)
def test_impossible_combinations_fail_clearly(
    helm: Helm, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    result = helm.run("template", RELEASE, CHART, "--values", path, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


# --- values.schema.json ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"config": {"store": {"ttl": "5 minutes"}}}, "/config/store/ttl"),
        ({"config": {"store": {"maxSeries": 0}}}, "/config/store/maxSeries"),
        ({"config": {"store": {"perParticipant": "no"}}}, "/config/store/perParticipant"),
        ({"config": {"privacy": {"userName": "md5"}}}, "/config/privacy/userName"),
        ({"config": {"web": {"webhookPath": "webhook"}}}, "/config/web/webhookPath"),
        ({"config": {"web": {"port": 70000}}}, "/config/web/port"),
        ({"config": {"log": {"level": "trace"}}}, "/config/log/level"),
        ({"replicaCount": "one"}, "/replicaCount"),
        ({"serviceMonitor": {"intervall": "30s"}}, "'intervall' not allowed"),
        ({"serviceMonitor": {"interval": "30"}}, "/serviceMonitor/interval"),
        ({"ingress": {"enabled": True}}, "/ingress/hosts"),
        ({"ingress": {"hosts": ["https://zoom.example.com/webhook"]}}, "/ingress/hosts/0"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"secretTokn": "x"}, "'secretTokn' not allowed"),
        (
            {"config": {"remoteWrite": {"retryBudget": "5 minutes"}}},
            "/config/remoteWrite/retryBudget",
        ),
        ({"config": {"remoteWrite": {"wal": {"fsync": "no"}}}}, "/config/remoteWrite/wal/fsync"),
        (
            {"config": {"remoteWrite": {"wal": {"persistence": {"size": "lots"}}}}},
            "/config/remoteWrite/wal/persistence/size",
        ),
        (
            {
                "config": {
                    "remoteWrite": {"wal": {"persistence": {"accessModes": ["ReadOnlyMany"]}}}
                }
            },
            "/config/remoteWrite/wal/persistence/accessModes/0",
        ),
        (
            {"config": {"remoteWrite": {"wal": {"emptyDir": {"sizeLimt": "1Gi"}}}}},
            "'sizeLimt' not allowed",
        ),
        ({"config": {"analytics": {"maxRows": 0}}}, "/config/analytics/maxRows"),
        (
            {"config": {"analytics": {"sites": [{**SITE_A, "subnets": []}]}}},
            "/config/analytics/sites/0/subnets",
        ),
        (
            {"config": {"analytics": {"sites": [{**SITE_A, "subnets": ["Paris"]}]}}},
            "/config/analytics/sites/0/subnets/0",
        ),
        (
            {"config": {"analytics": {"sites": [{**SITE_A, "name": "x" * 65}]}}},
            "/config/analytics/sites/0/name",
        ),
        (
            {"config": {"analytics": {"sites": [{"name": "A", "subnet": ["10.0.0.0/8"]}]}}},
            "/config/analytics/sites/0",
        ),
        (
            {"config": {"analytics": {"accounts": [{"id": 123456, "name": "A"}]}}},
            "/config/analytics/accounts/0/id",
        ),
        (
            {"config": {"analytics": {"thresholds": {"poor": SHIPPED_QUALITY["poor"]}}}},
            "properties 'cause' required",
        ),
        (
            {
                "config": {
                    "analytics": {
                        "thresholds": {
                            **SHIPPED_QUALITY,
                            "poor": {**SHIPPED_QUALITY["poor"], "packet_loss": 10},
                        }
                    }
                }
            },
            "/config/analytics/thresholds/poor/packet_loss",
        ),
        (
            {
                "config": {
                    "analytics": {
                        "thresholds": {
                            **SHIPPED_QUALITY,
                            "cause": {"wifi_rssi_dbm": -70},
                        }
                    }
                }
            },
            "/config/analytics/thresholds/cause",
        ),
    ],
)
def test_schema_rejects_wrong_values(
    helm: Helm, tmp_path: Path, values: dict[str, Any], where: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    result = helm.run("template", RELEASE, CHART, "--values", path, check=False)
    assert result.returncode != 0
    assert "don't meet the specifications of the schema" in result.stderr, result.stderr
    assert where in result.stderr, result.stderr


def test_schema_documents_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(values: dict[str, Any], node: dict[str, Any], where: str) -> None:
        for key, value in values.items():
            assert key in node.get("properties", {}), f"{where}{key} is not in the schema"
            child = node["properties"][key]
            assert child.get("description"), f"{where}{key} has no description"
            if isinstance(value, dict) and "properties" in child:
                walk(value, child, f"{where}{key}.")
            elif "default" in child:
                assert child["default"] == value, f"{where}{key}: default differs from values"

    walk(default_values(), schema, "")


# --- Ingress, Service, ServiceMonitor ----------------------------------------------------------


@pytest.mark.parametrize("case", ["ingress-tls", "all-features", "kube-prometheus-stack"])
def test_ingress_exposes_only_the_webhook_path(
    helm: Helm, rendered: dict[str, list[Manifest]], case: str
) -> None:
    docs = rendered[case]
    values = case_values(case)
    webhook = values.get("config", {}).get("web", {}).get("webhookPath", "/webhook")
    ingress = one(docs, "Ingress")
    spec = ingress["spec"]
    assert "defaultBackend" not in spec
    assert spec["ingressClassName"] == values["ingress"]["className"]
    assert spec["tls"] == values["ingress"]["tls"]
    assert [rule["host"] for rule in spec["rules"]] == values["ingress"]["hosts"]
    service = one(docs, "Service")
    for rule in spec["rules"]:
        (path,) = rule["http"]["paths"]
        assert path["path"] == webhook and path["pathType"] == "Exact"
        assert path["backend"]["service"] == {
            "name": service["metadata"]["name"],
            "port": {"name": "http"},
        }
    assert "http" in {port["name"] for port in service["spec"]["ports"]}
    notes = helm.notes(*case_args(case))
    for host in values["ingress"]["hosts"]:
        assert f"https://{host}{webhook}" in notes


@pytest.mark.parametrize("case", CASES)
def test_service_selects_the_pods(rendered: dict[str, list[Manifest]], case: str) -> None:
    docs = rendered[case]
    service = one(docs, "Service")
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port = service["spec"]["ports"][0]
    assert port == {"name": "http", "port": 9981, "targetPort": "http", "protocol": "TCP"}
    internal = case_values(case).get("config", {}).get("web", {}).get("internalPort", 0)
    assert len(service["spec"]["ports"]) == (2 if internal else 1)


@pytest.mark.parametrize("case", ["all-features", "kube-prometheus-stack"])
def test_service_monitor_is_what_kube_prometheus_stack_selects(
    rendered: dict[str, list[Manifest]], case: str
) -> None:
    docs = rendered[case]
    values = case_values(case)
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = one(docs, "Service")
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][-1]["name"]  # internal, when split
    telemetry = values.get("config", {}).get("web", {}).get("telemetryPath", "/metrics")
    assert endpoint["path"] == telemetry
    expected = {**default_values()["serviceMonitor"], **values["serviceMonitor"]}
    assert endpoint["interval"] == expected["interval"]
    assert endpoint["scrapeTimeout"] == expected["scrapeTimeout"]
    assert endpoint.get("relabelings", []) == expected["relabelings"]
    assert endpoint.get("metricRelabelings", []) == expected["metricRelabelings"]
    assert spec.get("sampleLimit", 0) == expected["sampleLimit"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "sampleLimit", "jobLabel"}
    # the job the chart's alerts select the exporter's own series by (exporter_selector)
    selector = yaml.safe_load((ROOT / "mixin" / "thresholds.yaml").read_text())["exporter_selector"]
    job = service["metadata"]["labels"][spec["jobLabel"]]
    assert selector == f'job="{job}"', "the exporter alerts would find no series"
    assert set(endpoint) <= {
        "port",
        "path",
        "scheme",
        "interval",
        "scrapeTimeout",
        "honorLabels",
        "tlsConfig",
        "relabelings",
        "metricRelabelings",
        "bearerTokenSecret",
        "basicAuth",
    }
    auth = values.get("config", {}).get("web", {}).get("metricsAuth", {})
    if auth.get("bearerTokenKey"):  # the scrape presents the exporter's own credentials
        secret = auth["existingSecret"]
        assert endpoint["bearerTokenSecret"] == {"name": secret, "key": auth["bearerTokenKey"]}


# --- rules and dashboards: the repository's own files ----------------------------------------


def rule_groups(rules: Path) -> list[Any]:
    """The groups of every rules/*.yml (and *.yaml) file in name order, as the chart reads
    them; promtool tests under rules/tests/ are not rule files."""
    groups: list[Any] = []
    for path in sorted(rules.glob("*.y*ml"), key=lambda p: p.name):
        if path.suffix in {".yml", ".yaml"} and path.is_file():
            groups += (yaml.safe_load(path.read_text()) or {}).get("groups") or []
    return groups


def dashboard_files(dashboards: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(dashboards.glob("*.json"))}


def top_level_rule_groups() -> list[Any]:
    return rule_groups(ROOT / "rules")


def top_level_dashboards() -> dict[str, str]:
    return dashboard_files(ROOT / "dashboards")


def dashboard_maps(docs: list[Manifest]) -> list[Manifest]:
    """The ConfigMaps for Grafana's sidecar (not the analytics' files)."""
    return [m for m in of_kind(docs, "ConfigMap") if "grafana_dashboard" in m["metadata"]["labels"]]


def test_chart_reads_the_top_level_rules_and_dashboards() -> None:
    for name in ("rules", "dashboards"):
        link = CHART / name
        assert link.is_symlink(), f"{link} should be a link to ../../{name}"
        assert os.readlink(link) == f"../../{name}"
        assert link.resolve() == (ROOT / name).resolve()
        assert link.is_dir(), f"the top-level {name}/ is missing: helm cannot load the chart"


@pytest.mark.parametrize("case", ["all-features", "kube-prometheus-stack"])
def test_prometheus_rule_is_exactly_rules_dir(
    rendered: dict[str, list[Manifest]], case: str
) -> None:
    docs = rendered[case]
    groups = top_level_rule_groups()
    rules = of_kind(docs, "PrometheusRule")
    if not groups:
        assert rules == []
        return
    (rule,) = rules
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == {"groups": groups}


@pytest.mark.parametrize("case", ["all-features", "kube-prometheus-stack"])
def test_dashboard_config_maps_are_exactly_dashboards_dir(
    rendered: dict[str, list[Manifest]], case: str
) -> None:
    docs = rendered[case]
    maps = dashboard_maps(docs)
    assert {k: v for m in maps for k, v in m["data"].items()} == top_level_dashboards()
    for config_map in maps:
        assert len(config_map["data"]) == 1
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        (content,) = config_map["data"].values()
        json.loads(content)


def test_kubernetes_doc_example_is_a_tested_values_file() -> None:
    example = (CHART / "ci" / "kube-prometheus-stack-values.yaml").read_text()
    indented = "".join(f"   {line}" if line.strip() else line for line in example.splitlines(True))
    assert f"   ```yaml\n{indented}   ```\n" in (ROOT / "docs" / "kubernetes.md").read_text()


def test_nothing_monitoring_related_by_default(rendered: dict[str, list[Manifest]]) -> None:
    kinds = {doc["kind"] for doc in rendered["default"]}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Ingress"}


# --- the chart's generic reading of rules/ and dashboards/, on fixture files ------------------


FIXTURE_RULES = {
    "a-alerts.yml": """\
groups:
  - name: zoom.alerts
    rules:
      - alert: ZoomFixtureHighLoss
        expr: zoom_qos_packet_loss_avg_ratio > 0.05
        for: 5m
        labels:
          severity: warning
          priority: "1"
        annotations:
          summary: Loss over 5%
          description: >-
            {{ $labels.participant_id }} loses {{ $value | humanizePercentage }}
          runbook_url: https://example.com/runbooks/ZoomFixtureHighLoss
""",
    "b-records.yaml": """\
groups:
  - name: zoom.records
    interval: 1m
    rules:
      - record: product:zoom_qos_samples:rate5m
        expr: |
          sum by (product) (
            rate(zoom_qos_samples_total[5m])
          )
  - name: zoom.more
    rules: []
""",
    "notes.txt": "not a rule file\n",
}
FIXTURE_DASHBOARDS = {
    "Zoom Fleet.json": '{\n  "uid": "zoom-fleet",\n  "title": "Zoom / Fleet <&> ü"\n}\n',
    "zoom_participant.json": '{"uid":"zoom-participant","title":"Zoom / Participant",'
    '"panels":[{"targets":[{"expr":"sum(rate(x[5m])) > 0.5"}]}]}',
}


@pytest.fixture
def fixture_chart(tmp_path: Path) -> Iterator[Path]:
    """A copy of the chart beside its own rules/ and dashboards/ (the links follow)."""
    chart = tmp_path / "helm" / "zoom-qss-exporter"
    shutil.copytree(CHART, chart, symlinks=True)
    rules, dashboards = tmp_path / "rules", tmp_path / "dashboards"
    (rules / "tests").mkdir(parents=True)
    dashboards.mkdir()
    for name, text in FIXTURE_RULES.items():
        (rules / name).write_text(text)
    (rules / "tests" / "alerts_test.yml").write_text("rule_files: [../a-alerts.yml]\ngroups: []\n")
    for name, text in FIXTURE_DASHBOARDS.items():
        (dashboards / name).write_text(text, encoding="utf-8")
    yield chart


MONITORING = ["--set", "prometheusRule.enabled=true", "--set", "dashboards.enabled=true"]


def test_fixture_rules_become_one_prometheus_rule(helm: Helm, fixture_chart: Path) -> None:
    docs = helm.template(*MONITORING, chart=fixture_chart)
    (rule,) = of_kind(docs, "PrometheusRule")
    groups = rule_groups(fixture_chart.parent.parent / "rules")
    assert [g["name"] for g in groups] == ["zoom.alerts", "zoom.records", "zoom.more"]
    assert rule["spec"] == {"groups": groups}
    description = groups[0]["rules"][0]["annotations"]["description"]
    assert description == "{{ $labels.participant_id }} loses {{ $value | humanizePercentage }}"


def test_fixture_dashboards_become_config_maps(helm: Helm, fixture_chart: Path) -> None:
    docs = helm.template(
        *MONITORING,
        "--set",
        "dashboards.label=my_dashboards",
        "--set",
        "dashboards.labelValue=yes",
        "--set",
        "dashboards.namespace=grafana",
        chart=fixture_chart,
    )
    maps = {m["metadata"]["name"]: m for m in of_kind(docs, "ConfigMap")}
    assert sorted(maps) == [
        f"{RELEASE}-zoom-qss-exporter-dashboard-zoom-fleet",
        f"{RELEASE}-zoom-qss-exporter-dashboard-zoom-participant",
    ]
    by_file = {k: v for m in maps.values() for k, v in m["data"].items()}
    assert by_file == FIXTURE_DASHBOARDS
    for config_map in maps.values():
        assert config_map["metadata"]["labels"]["my_dashboards"] == "yes"
        assert config_map["metadata"]["namespace"] == "grafana"


def test_fixture_without_rule_files_renders_no_prometheus_rule(
    helm: Helm, fixture_chart: Path
) -> None:
    for path in (fixture_chart.parent.parent / "rules").glob("*.y*ml"):
        path.unlink()
    assert not of_kind(helm.template(*MONITORING, chart=fixture_chart), "PrometheusRule")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c-broken.yml", "groups: [\n", "rules/c-broken.yml is not valid YAML"),
        (
            "c-twice.yml",
            "groups:\n  - name: zoom.alerts\n    rules: []\n",
            'rule group "zoom.alerts" is in both rules/a-alerts.yml and rules/c-twice.yml',
        ),
    ],
)
def test_fixture_rule_mistakes_fail_the_rendering(
    helm: Helm, fixture_chart: Path, name: str, text: str, message: str
) -> None:
    (fixture_chart.parent.parent / "rules" / name).write_text(text)
    result = helm.run("template", RELEASE, fixture_chart, *MONITORING, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_packaged_chart_holds_the_files_not_links(helm: Helm, fixture_chart: Path) -> None:
    out = fixture_chart.parent / "out"
    helm.run("package", fixture_chart, "--destination", out)
    (package,) = out.glob("zoom-qss-exporter-*.tgz")
    with tarfile.open(package) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for name in (*FIXTURE_DASHBOARDS, "a-alerts.yml"):
        folder = "dashboards" if name.endswith(".json") else "rules"
        member = members[f"zoom-qss-exporter/{folder}/{name}"]
        assert member.isfile()
    assert not any("/rules/tests/" in name or "/ci/" in name for name in members)


# --- the container image ---------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, (INSTRUCTION, arguments), grouped by stage; the
    instructions before the first FROM form stage 0."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), " ".join(rest.split())))
    return stages


def final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages()[-1]


def dockerfile_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for stage in dockerfile_stages():
        for instruction, rest in stage:
            if instruction == "ARG" and "=" in rest:
                name, _, value = rest.partition("=")
                args[name] = value.strip('"')
    return args


def dockerfile_exec_form(instruction: str) -> list[str]:
    (value,) = [rest for name, rest in final_stage() if name == instruction]
    parsed: list[str] = json.loads(value)
    return parsed


def dockerfile_user() -> tuple[int, int]:
    (value,) = [rest for name, rest in final_stage() if name == "USER"]
    user, _, group = value.partition(":")
    return int(user), int(group)


def test_dockerfile_matches_the_chart() -> None:
    stages = dockerfile_stages()
    assert len(stages) == 3, "an ARG preamble, a build stage and a final stage"
    base = dockerfile_args()["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base)
    build_from = stages[1][0][1]
    assert build_from.endswith(" AS build")
    assert stages[2][0] == ("FROM", "${PYTHON_IMAGE}")
    assert dockerfile_exec_form("ENTRYPOINT") == ["zoom-qss-exporter"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "zoom-qss-exporter" in pyproject["project"]["scripts"]
    assert dockerfile_exec_form("CMD") == ["serve"]
    values = default_values()
    (expose,) = [rest for name, rest in final_stage() if name == "EXPOSE"]
    assert int(expose) == values["config"]["web"]["port"] == Settings().web.port
    user, group = dockerfile_user()
    assert user != 0
    assert (user, group) == (
        values["podSecurityContext"]["runAsUser"],
        values["podSecurityContext"]["runAsGroup"],
    )
    assert (user, group) == (
        values["securityContext"]["runAsUser"],
        values["securityContext"]["runAsGroup"],
    )
    env = " ".join(rest for name, rest in final_stage() if name == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    final = " ".join(f"{name} {rest}" for name, rest in final_stage())
    assert "COPY" not in {name for name, _ in final_stage()}, "the final stage copies no sources"
    assert "from=build,source=/wheels" in final and "--no-index" in final
    assert "pip uninstall --yes setuptools wheel" in final
    for label in ("title", "description", "version", "licenses", "revision", "created"):
        assert f"org.opencontainers.image.{label}=" in final


def _build_stage_context(tmp_path: Path) -> Path:
    """The build stage's context: what its COPY instructions take, and nothing else."""
    context = tmp_path / "context"
    context.mkdir()
    for name, rest in dockerfile_stages()[1]:
        if name != "COPY":
            continue
        *sources, _ = rest.split()
        for source in sources:
            src = ROOT / source.rstrip("/")
            if src.is_dir():
                shutil.copytree(
                    src,
                    context / source.rstrip("/"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                )
            else:
                shutil.copy2(src, context / source)
    return context


def test_wheel_from_the_build_stage_runs_as_the_chart_runs_it(
    helm: Helm, tmp_path: Path, rendered: dict[str, list[Manifest]]
) -> None:
    """What the image's two stages do, without Docker: `pip wheel` the build stage's context,
    install only those wheels (no index) into a fresh virtualenv, then run the entrypoint with the
    chart's arguments and environment and probe it where the chart's probes look; with remote
    write, its write-ahead log is on the chart's volume and nothing is written elsewhere."""
    context = _build_stage_context(tmp_path)
    wheels = tmp_path / "wheels"
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", wheels, context],
        check=True,
        env=pip_env,
        timeout=300,
        capture_output=True,
    )
    assert any(wheels.glob(f"zoom_qss_exporter-{__version__}-py3-none-any.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(wheels)]
    subprocess.run(
        [*pip, "zoom-qss-exporter"],
        check=True,
        env=pip_env,
        timeout=300,
        capture_output=True,
    )
    # As the final stage does: no build backend left beside the exporter.
    subprocess.run(
        [venv / "bin" / "pip", "uninstall", "-q", "--yes", "setuptools", "wheel"],
        check=True,
        env=pip_env,
        timeout=120,
        capture_output=True,
    )
    entrypoint = venv / "bin" / dockerfile_exec_form("ENTRYPOINT")[0]
    version = subprocess.run(
        [entrypoint, "--version"], check=True, capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"zoom-qss-exporter {__version__}"

    docs = rendered["default"]
    workdir = tmp_path / "cwd"  # the image's is /, read-only: nothing may be written there
    workdir.mkdir()
    with running_as_the_chart(entrypoint, docs, tmp_path / "default", workdir) as (base, env):
        main = container(docs)
        for probe in ("livenessProbe", "readinessProbe"):
            assert httpx.get(base + main[probe]["httpGet"]["path"]).status_code == 200
        metrics = httpx.get(base + env["ZOOM_QSS_WEB_TELEMETRY_PATH"])
        assert "zoom_qss_exporter_build_info" in metrics.text
        unsigned = httpx.post(base + env["ZOOM_QSS_WEB_WEBHOOK_PATH"], json={"event": "x"})
        assert unsigned.status_code == 401

    # With remote write (to a port where nothing listens): an event answered 200 is in the
    # write-ahead log, on the volume the chart mounts for it.
    remote = f"http://127.0.0.1:{free_port()}/api/v1/write"
    docs = helm.template(
        "--set",
        f"config.remoteWrite.url={remote}",
        "--set",
        "config.remoteWrite.shutdownTimeout=1s",
    )
    volumes = tmp_path / "remote-write"
    with running_as_the_chart(entrypoint, docs, volumes, workdir) as (base, env):
        body = ROOT / "tests" / "fixtures" / "zoom-examples" / "meeting.participant_qos.json"
        content = body.read_bytes()
        headers = {"content-type": "application/json"}
        headers.update(sign_headers("t", int(time.time()), content))
        answer = httpx.post(
            base + env["ZOOM_QSS_WEB_WEBHOOK_PATH"], content=content, headers=headers
        )
        assert answer.status_code == 200, answer.text
        assert env["ZOOM_QSS_REMOTE_WRITE_WAL_DIRECTORY"] == str(volumes / "wal")
        segments = list((volumes / "wal").glob("segment-*.wal"))
        assert sum(segment.stat().st_size for segment in segments) > 0, segments

    # With the analytics' files of all-features, from the chart's ConfigMap laid out as the
    # kubelet does: the exporter starts with them (accounts and thresholds are read at start).
    values = tmp_path / "analytics-values.json"  # JSON: see render_values
    values.write_text(json.dumps({"config": {"analytics": all_features_analytics()}}))
    docs = helm.template("--values", values)
    with running_as_the_chart(entrypoint, docs, tmp_path / "analytics", workdir) as (base, env):
        assert env["ZOOM_QSS_ANALYTICS_SITES_FILE"].startswith(str(tmp_path / "analytics"))
        exposition = httpx.get(base + env["ZOOM_QSS_WEB_TELEMETRY_PATH"]).text
        sites = re.search(r"^zoom_qss_exporter_analytics_sites (\S+)$", exposition, re.M)
        assert sites and float(sites.group(1)) == 3, exposition
    assert list(workdir.iterdir()) == [], "the exporter wrote to its working directory"


@contextlib.contextmanager
def running_as_the_chart(
    entrypoint: Path, docs: list[Manifest], volumes: Path, workdir: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """The installed console script with the container's arguments and environment, each volume
    the chart mounts standing in as a directory under ``volumes`` (paths in the environment
    follow); yields its URL and environment."""
    chart = stand_in_volumes(docs, resolved_env(docs, WAITED_FOR), volumes)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOOM_")}
    env.update(chart)
    env.update(PYTHONDONTWRITEBYTECODE="1", ZOOM_QSS_WEB_LISTEN_ADDRESS=f"127.0.0.1:{port}")
    argv = [str(entrypoint), *container(docs)["args"]]
    log = volumes / "serve.log"
    with serving("the installed wheel", argv, port, log, env=env, cwd=workdir) as base:
        yield base, env
