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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.localkafka import free_port
from streams.watchdog import STALL_EXIT_CODE


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
    command: str = "worker",
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process, ready (its web server answers), stopped by PID afterwards.

    ``command`` ``"trainer"`` runs ``nudge trainer`` instead; ``extra`` then
    gives it a web port of its own (``NUDGE_WEB_PORT``), which readiness is checked on.
    """
    variables = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    variables.update(env.variables())
    variables.update(extra or {})
    nudge = Path(sys.executable).with_name("nudge")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(nudge), command, "-l", "info"],
            env=variables,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )
        try:
            _wait_ready(process, int(variables["NUDGE_WEB_PORT"]), ready_timeout, log_path)
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


STALL_SETTINGS = {"NUDGE_STALL_SECONDS": "8"}
"""Tests watch for stalls on a short period (the default, a minute, outlasts their waits)."""


class Supervisor:
    """Keeps a worker running the way a process supervisor would, for tests that wait on it.

    The stall watchdog (``streams.watchdog``) exits a worker it cannot
    unstick with :data:`streams.watchdog.STALL_EXIT_CODE` and relies on a
    supervisor (Kubernetes, systemd) to start it again; a test stands in for
    that supervisor by calling :meth:`check` while it waits. Any other exit
    fails the test. A test's own SIGKILLs go through :meth:`kill` and
    :meth:`start` and are not restarts. Each process logs to its own file in
    ``log_dir`` (``worker-0.log``, ``worker-1.log``...).
    """

    def __init__(
        self,
        env: WorkerEnv,
        log_dir: Path,
        stack: ExitStack,
        *,
        extra: dict[str, str] | None = None,
        name: str = "worker",
    ) -> None:
        self.env, self.log_dir, self.stack, self.name = env, log_dir, stack, name
        self.extra = {**STALL_SETTINGS, **(extra or {})}
        self.logs: list[Path] = []
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        """Start a new worker process (the previous one must have exited)."""
        log = self.log_dir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        self.process = self.stack.enter_context(running_worker(self.env, log, extra=self.extra))
        return self.process

    def kill(self) -> None:
        """SIGKILL the worker and wait for it (the test's own crash, not a restart)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def check(self) -> bool:
        """Restart a worker the watchdog made exit; fail on any other exit. Always False.

        False so that ``wait_for(lambda: supervisor.check() or done(), ...)``
        reads as "restart if need be, then see whether it is done".
        """
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return False
        if code != STALL_EXIT_CODE:
            tail = self.logs[-1].read_text(errors="replace")[-4000:]
            raise AssertionError(f"worker exited with {code}:\n{tail}")
        self.restarts += 1
        self.start()
        return False

    def stalls_logged(self) -> list[str]:
        """The watchdog's ERROR lines in every log, for the test's report."""
        return [
            line
            for log in self.logs
            for line in log.read_text(errors="replace").splitlines()
            if "stall:" in line and "ERROR" in line
        ]
