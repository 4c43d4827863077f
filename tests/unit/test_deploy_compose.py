"""docker-compose.yml: valid for Compose, every mounted file present, every port on loopback.

``docker-compose config`` validates and normalises the file without a Docker
engine; `make test` installs Debian's docker-compose for it (`make tools`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = {"kafka", "worker-1", "worker-2", "simulator", "prometheus", "grafana"}


def docker_compose(*args: str) -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is not installed: run `make tools` (Debian package)")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGE_", "GRAFANA_"))}
    done = subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def normalised() -> str:
    return docker_compose("config")


def test_compose_accepts_the_file_and_it_has_the_whole_stack() -> None:
    assert set(docker_compose("config", "--services").split()) == SERVICES


def test_every_file_the_stack_mounts_is_in_the_repository(normalised: str) -> None:
    # Normalised bind mounts are absolute: "- /abs/source:/target[:mode]".
    sources = re.findall(r"^\s*- (/[^:\s]+):/", normalised, flags=re.MULTILINE)
    assert len(sources) == 4
    for source in sources:
        path = Path(source)
        assert path.is_relative_to(ROOT), source
        assert path.exists(), f"docker-compose.yml mounts {source}, which does not exist"
    assert (ROOT / "deploy" / "Dockerfile").exists()


def test_every_published_port_is_on_loopback(normalised: str) -> None:
    ports = re.findall(r"^\s*- (\S+:\d+/tcp)$", normalised, flags=re.MULTILINE)
    assert ports, normalised
    for published in ports:
        assert published.startswith("127.0.0.1:"), published


def test_prometheus_in_compose_scrapes_every_worker() -> None:
    config = (ROOT / "deploy" / "prometheus" / "prometheus.compose.yml").read_text()
    workers = {s for s in docker_compose("config", "--services").split() if s.startswith("worker")}
    for worker in workers:
        assert f'"{worker}:6066"' in config, worker


def test_the_image_logs_json_lines_without_fausts_banner() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "NUDGE_LOG_FORMAT=json" in dockerfile
    assert 'CMD ["--quiet", "worker", "-l", "info"]' in dockerfile
