"""The ``nudge`` command as an operator runs it: settings checked before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.agents

NUDGE = str(Path(sys.executable).with_name("nudge"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    return subprocess.run(
        [NUDGE, *args],
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_settings_stop_the_worker_naming_every_bad_variable(tmp_path: Path) -> None:
    result = run(
        "worker",
        "-l",
        "info",
        env={"NUDGE_TOPIC_PARTITIONS": "0", "NUDGE_STORE": "redis://", "HOME": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "NUDGE_TOPIC_PARTITIONS" in result.stderr
    assert "NUDGE_STORE: expected memory:// or rocksdb://" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_is_not_exposed_without_a_token() -> None:
    result = run("worker", env={"NUDGE_WEB_BIND": "0.0.0.0"})  # noqa: S104 - under test
    assert result.returncode != 0
    assert "NUDGE_API_TOKEN" in result.stderr


def test_project_commands_are_registered() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("worker", "kafka", "simulate", "replay", "report"):
        assert f"  {command} " in result.stdout, command
