"""docker-compose.yml parses with a real compose implementation and mirrors the local profile."""

from __future__ import annotations

import os
import shutil
import subprocess

import yaml

from smartcity.settings import PROJECT_ROOT, Settings

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "compose-test-user", "AWS_SECRET_ACCESS_KEY": "compose-test-secret"}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    executable = shutil.which("docker-compose")
    assert executable, "docker-compose is missing: `make test` installs it (Debian package docker-compose)"
    return subprocess.run(
        [executable, "-f", str(COMPOSE_FILE), "config"], env=env, capture_output=True, text=True, timeout=60
    )


def published_port(port: dict | str) -> tuple[str, int, int]:
    """(host ip, published, target) from either compose output form: a mapping or 'ip:pub:target/tcp'."""
    if isinstance(port, dict):
        return port["host_ip"], int(port["published"]), int(port["target"])
    host_ip, published, target = str(port).split("/")[0].split(":")
    return host_ip, int(published), int(target)


def clean_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in CREDENTIALS}


def test_compose_file_is_valid_and_matches_local_profile() -> None:
    result = compose_config({**clean_environment(), **CREDENTIALS})
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"kafka", "spark-master", "spark-worker", "postgres", "s3"} <= set(services)

    defaults = Settings.model_fields
    port = defaults["kafka_port"].default
    assert [published_port(p) for p in services["kafka"]["ports"]] == [("127.0.0.1", port, port)]
    assert services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"] == str(defaults["kafka_partitions"].default)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ZOOKEEPER" not in result.stdout.upper()


def test_every_published_port_is_loopback_only() -> None:
    result = compose_config({**clean_environment(), **CREDENTIALS})
    for name, service in yaml.safe_load(result.stdout)["services"].items():
        for port in service.get("ports", []):
            assert published_port(port)[0] == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_s3_credentials_are_required_not_committed() -> None:
    result = compose_config(clean_environment())
    assert result.returncode != 0
    assert "AWS_ACCESS_KEY_ID" in result.stderr
    assert "compose-test-secret" not in COMPOSE_FILE.read_text()
