"""Run a real ``nudge worker`` process for a test and stop it by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.localkafka import free_port


@dataclass(frozen=True)
class WorkerEnv:
    """Names unique to one test, so tests never share topics or groups."""

    bootstrap: str
    suffix: str
    partitions: int
    web_port: int

    @classmethod
    def fresh(cls, bootstrap: str, *, partitions: int = 4) -> WorkerEnv:
        return cls(bootstrap, uuid.uuid4().hex[:10], partitions, free_port())

    @property
    def app_id(self) -> str:
        return f"nudge-test-{self.suffix}"

    def topic(self, kind: str) -> str:
        return f"{kind}-{self.suffix}"

    def variables(self) -> dict[str, str]:
        return {
            "NUDGE_APP_ID": self.app_id,
            "NUDGE_BOOTSTRAP_SERVERS": self.bootstrap,
            "NUDGE_TOPIC_PARTITIONS": str(self.partitions),
            "NUDGE_TOPIC_CLICKSTREAM": self.topic("clickstream"),
            "NUDGE_TOPIC_CART": self.topic("cart"),
            "NUDGE_TOPIC_EMAIL": self.topic("email"),
            "NUDGE_TOPIC_CUSTOMERS": self.topic("customers"),
            "NUDGE_TOPIC_REPLAY": self.topic("replay"),
            "NUDGE_TOPIC_DEADLETTER": self.topic("events.deadletter"),
            "NUDGE_TOPIC_PROFILES": self.topic("profiles"),
            "NUDGE_TOPIC_TRIGGERS": self.topic("triggers"),
            "NUDGE_TOPIC_HOLDOUT": self.topic("holdout"),
            "NUDGE_TOPIC_DECISIONS": self.topic("decisions"),
            "NUDGE_TOPIC_TRAINING": self.topic("training"),
            "NUDGE_TOPIC_CLOCK": self.topic("clock"),
            "NUDGE_WEB_PORT": str(self.web_port),
            "NUDGE_CONSUMER_SESSION_TIMEOUT_SECONDS": "10",
            "NUDGE_COMMIT_INTERVAL_SECONDS": "0.5",
        }

    def changelog(self, table: str) -> str:
        return f"{self.app_id}-{table}-changelog"


@contextmanager
def running_worker(
    env: WorkerEnv,
    log_path: Path,
    *,
    extra: dict[str, str] | None = None,
    ready_timeout: float = 90.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process, ready (its web server answers), stopped by PID afterwards."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    variables.update(env.variables())
    variables.update(extra or {})
    nudge = Path(sys.executable).with_name("nudge")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(nudge), "worker", "-l", "info"],
            env=variables,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )
        try:
            _wait_ready(process, env.web_port, ready_timeout, log_path)
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes], *, grace: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"worker exited with {process.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"worker not ready in {timeout}s:\n{log_path.read_text()[-4000:]}")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())
