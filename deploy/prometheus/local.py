"""Run Debian's ``prometheus`` binary on a free loopback port, and ask it questions.

For the integration test and the dashboard preview: a throw-away Prometheus
with its own data directory, scraping the given targets every second with
Nudge's rules loaded, stopped by its PID. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RULES = Path(__file__).resolve().parent / "rules" / "nudge.rules.yml"


class PrometheusError(RuntimeError):
    """Prometheus could not start, or answered a query with an error."""


def free_port() -> int:
    """Find a TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_text(targets: Sequence[str], *, interval: str = "1s", rules: Path = RULES) -> str:
    """Write a Prometheus configuration (JSON is YAML) scraping ``targets`` as job ``nudge``."""
    return json.dumps(
        {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": "nudge",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": list(targets)}],
                }
            ],
        },
        indent=2,
    )


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus: its address and an HTTP API client."""

    url: str
    process: subprocess.Popen[bytes]

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return ``data``; raise with Prometheus' error."""
        query = urllib.parse.urlencode(params)
        request = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate ``expr`` now; the result's series (a scalar comes back as one)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """Evaluate ``expr`` over a time range."""
        data = self.api("query_range", query=expr, start=str(start), end=str(end), step=str(step))
        return list(data["result"])


def binary() -> str:
    """Find the ``prometheus`` executable, or raise an error naming the install step."""
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusError(
            "prometheus is not installed: run `make tools` (Debian package `prometheus`)"
        )
    return found


@contextmanager
def running_prometheus(
    workdir: Path, targets: Sequence[str], *, interval: str = "1s", timeout: float = 60.0
) -> Iterator[Prometheus]:
    """Start Prometheus scraping ``targets``; stop it by its PID on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(config_text(targets, interval=interval))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own arguments
            [
                binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        try:
            server = Prometheus(f"http://127.0.0.1:{port}", process)
            _wait_ready(server, timeout, log_path)
            yield server
        finally:
            _stop(process)


def _wait_ready(server: Prometheus, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise PrometheusError(
                f"prometheus exited with {server.process.returncode}:\n"
                + log_path.read_text()[-3000:]
            )
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise PrometheusError(f"prometheus not ready in {timeout}s:\n{log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
