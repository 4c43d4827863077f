"""The demo (``make demo``): triggers show up live, and Ctrl-C stops everything it started.

The demo is run as ``make demo`` runs it, ``python -m streams.demo``, with a
smaller shop played faster (twelve simulated hours at 2400x), so the first
abandonment deadlines mature within seconds. It starts a broker of its own,
so this test does not use the suite's.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from streams.localkafka import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TRIGGER_ROW = re.compile(r"^\S+ +\S+ +(browse_abandonment|cart_abandonment|high_intent) ")
ROWS_WANTED = 3


def lines_of(process: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """Each line the process prints, as it prints it, and the thread reading them."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
        except ValueError:  # closed by the test once the demo is gone
            return

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    return lines, reader


def listening(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) == 0


def test_the_demo_shows_triggers_live_and_stops_what_it_started_on_ctrl_c() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    env["NUDGE_WEB_PORT"] = str(free_port())
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams.demo", "--customers=200", "--hours=12", "--speed=2400"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        lines, reader = lines_of(demo)
        rows: list[str] = []
        deadline = time.monotonic() + 180
        while len(rows) < ROWS_WANTED and time.monotonic() < deadline and demo.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            output.append(line)
            if TRIGGER_ROW.match(line):
                rows.append(line)
        assert len(rows) >= ROWS_WANTED, "\n".join(output[-40:])

        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=90) == 0
        reader.join(timeout=10)
        while not lines.empty():
            output.append(lines.get_nowait())
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()

    text = "\n".join(output)
    assert "decisions by trigger type and outcome:" in text
    worker = re.search(r"worker pid (\d+)", text)
    broker = re.search(r"local Kafka broker on (\S+) ", text)
    assert worker is not None
    assert broker is not None
    with pytest.raises(ProcessLookupError):
        os.kill(int(worker.group(1)), 0)  # the worker is gone
    assert not listening(broker.group(1))  # and so is the broker
