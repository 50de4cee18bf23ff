"""The deployment manifests name every service, with commands and settings that exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"catalog", "versioning", "lineage", "promotion", "audit", "events"}
KNOWN_SETTINGS = {
    m for path in (ROOT / "libs").rglob("*.py") for m in re.findall(r"MODELREG_[A-Z0-9_]+", path.read_text())
} | {
    m
    for path in (ROOT / "services").rglob("*.py")
    for m in re.findall(r"MODELREG_[A-Z0-9_]+", path.read_text())
}


def test_compose_runs_every_service_with_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert SERVICES <= services.keys()
    for name in SERVICES:
        module, verb = services[name]["command"][:2]
        assert (module, verb) == (f"modelreg.{name}", "serve")
        assert importlib.util.find_spec(f"{module}.main") is not None
        assert set(services[name]["environment"]) <= KNOWN_SETTINGS
    assert {"kafka", "postgres", "minio", "topics"} <= services.keys()
    archiver = services["archiver"]
    assert archiver["command"][:4] == ["modelreg.cli.main", "ops", "archive", "--follow"]
    assert set(archiver["environment"]) <= KNOWN_SETTINGS
    assert archiver["environment"]["MODELREG_ARCHIVE"].startswith("s3://")
    assert_archive_command_exists(archiver["command"][1:])
    gateway = services["gateway"]
    assert gateway["command"][:2] == ["modelreg.gateway", "serve"]
    assert importlib.util.find_spec("modelreg.gateway.main") is not None
    assert set(gateway["environment"]) <= KNOWN_SETTINGS
    assert gateway["environment"]["MODELREG_CATALOG_ADDR"] == "catalog:50051"


def test_kubernetes_manifests_deploy_every_service_with_known_settings() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "modelreg.yaml").read_text()))
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == SERVICES | {"archiver", "gateway"}
    gateway = deployments.pop("gateway")["spec"]["template"]["spec"]["containers"][0]
    assert gateway["args"][:2] == ["modelreg.gateway", "serve"]
    assert {e["name"] for e in gateway["env"]} <= KNOWN_SETTINGS
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/health"
    archiver = deployments.pop("archiver")
    assert archiver["spec"]["replicas"] == 1 and archiver["spec"]["strategy"]["type"] == "Recreate"
    archiver_args = archiver["spec"]["template"]["spec"]["containers"][0]["args"]
    assert archiver_args[:4] == ["modelreg.cli.main", "ops", "archive", "--follow"]
    assert_archive_command_exists(archiver_args[1:])
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][:2] == [f"modelreg.{name}", "serve"]
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    assert (set(config) | set(secret)) <= KNOWN_SETTINGS
    assert {"MODELREG_KAFKA_BOOTSTRAP", "MODELREG_PG_DSN", "MODELREG_ARTIFACTS"} <= set(config) | set(secret)
    assert config["MODELREG_ARCHIVE"].startswith("s3://")


def assert_archive_command_exists(args: list[str]) -> None:
    """The manifests' archiver command line parses (its settings come from the environment)."""
    from typer.testing import CliRunner

    from modelreg.cli.main import app

    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "--follow" in result.output


def test_deploy_manifests_require_authentication_with_a_mounted_token_file() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name in SERVICES:
        service = compose["services"][name]
        assert service["environment"]["MODELREG_AUTH"] == "required"
        assert service["environment"]["MODELREG_AUTH_TOKEN_FILE"] == "/run/secrets/modelreg-tokens"
        assert service["secrets"] == ["modelreg-tokens"]
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "modelreg.yaml").read_text()))
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["MODELREG_AUTH"] == "required"
    mount = "/etc/modelreg/auth"
    assert config["MODELREG_AUTH_TOKEN_FILE"].startswith(mount + "/")
    for deployment in (d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] in SERVICES):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["volumes"] == [
            {"name": "auth", "secret": {"secretName": "modelreg-auth", "defaultMode": 0o400}}
        ]
        assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == mount


def test_deploy_manifests_keep_rbac_on() -> None:
    """RBAC is off only when MODELREG_ROLES and MODELREG_ADMINS are both empty: never in a deploy."""
    from modelreg.access import AccessControl

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name in SERVICES:
        env = compose["services"][name]["environment"]
        defaults = {k: re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", str(v)) for k, v in env.items()}
        assert AccessControl.from_env(defaults).enabled, name
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "modelreg.yaml").read_text()))
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert AccessControl.from_env({**config, **secret}).enabled
