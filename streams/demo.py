"""``make demo``: a local broker, a worker and a simulated shop, with triggers shown live.

The demo replays the last half day of a simulated shop at 120 times real
speed (six minutes), so abandoned browsing sessions and carts mature into
triggers while you watch. The worker runs on event time only
(``NUDGE_WALL_CLOCK=false``): the shop's clock is simulated, not the wall's.
Each trigger and each decision is printed as a table row as it reaches its
topic; Ctrl-C (or the end of the simulation) prints a summary. The demo owns
what it starts: a broker of its own (fresh data in a temporary folder),
the worker and the simulator, all stopped by their PIDs however it ends.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from kafka import KafkaConsumer

from streams import localkafka
from streams.settings import Settings, load_settings

SPEED = 120
SIMULATED_HOURS = 12
CUSTOMERS = 400


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the shop's size and pace (``make demo`` uses the defaults)."""
    parser = argparse.ArgumentParser(prog="python -m streams.demo", description=__doc__)
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--hours", type=float, default=SIMULATED_HOURS, help="simulated hours")
    parser.add_argument("--speed", type=float, default=SPEED, help="simulated time per wall time")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo until the simulation ends or Ctrl-C; return the exit code."""
    args = parse_args(argv)
    settings = load_settings()
    with ExitStack() as stack:
        # A broker of its own, on free loopback ports: every demo starts clean.
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nudge-demo-")))
        broker = localkafka.LocalKafka.ephemeral(data)
        print(f"starting a local Kafka broker on {broker.bootstrap_servers} ...", flush=True)
        broker.start()
        stack.callback(broker.stop)
        env = {
            **os.environ,
            "NUDGE_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "NUDGE_WALL_CLOCK": "false",
            "NUDGE_APP_ID": f"nudge-demo-{int(time.time())}",
        }
        worker = stack.enter_context(_process(["worker", "-l", "warn"], env))
        print(f"worker pid {worker.pid}; waiting until it is ready ...", flush=True)
        if not _ready(settings, worker):
            print("the worker did not start; see its output above", file=sys.stderr)
            return 1
        start = datetime.now(UTC) - timedelta(hours=args.hours)
        simulator = stack.enter_context(
            _process(
                [
                    "simulate",
                    f"--customers={args.customers}",
                    f"--days={args.hours / 24}",
                    f"--start={start.isoformat()}",
                    f"--speed={args.speed}",
                ],
                env,
                quiet=True,  # its progress line would break the table
            )
        )
        print(_banner(settings, args), flush=True)
        counts: Counter[tuple[str, str]] = Counter()
        try:
            for row in _watch(broker.bootstrap_servers, settings, simulator):
                counts[(row["trigger_type"], row["outcome"])] += 1
        except KeyboardInterrupt:
            pass
        print(_summary(counts), flush=True)
    return 0


def _ready(settings: Settings, worker: subprocess.Popen[bytes], timeout: float = 120) -> bool:
    """Wait until the worker answers on its metrics page (it has created its topics)."""
    url = f"http://{settings.web_bind}:{settings.web_port}/metrics"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def _banner(settings: Settings, args: argparse.Namespace) -> str:
    base = f"http://{settings.web_bind}:{settings.web_port}"
    return (
        f"simulating {args.customers} customers over {args.hours:g} h at {args.speed:g}x; "
        f"metrics at {base}/metrics, profiles at {base}/customers/<id>; Ctrl-C stops\n\n"
        f"{'event time':<20} {'customer':<12} {'trigger':<22} {'tier':<12} "
        f"{'outcome':<{_OUTCOME_WIDTH}} reason"
    )


def _watch(
    bootstrap: str, settings: Settings, simulator: subprocess.Popen[bytes]
) -> Iterator[dict[str, str]]:
    """Print each decision as it arrives, until the simulator is done and the topic is quiet."""
    consumer = KafkaConsumer(
        settings.topic_decisions, bootstrap_servers=bootstrap, auto_offset_reset="latest"
    )
    quiet_since: float | None = None
    try:
        while True:
            batch = consumer.poll(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    decision = orjson.loads(record.value)
                    print(_row(decision), flush=True)
                    yield decision
            if simulator.poll() is None or batch:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 15:
                return
    finally:
        consumer.close()


_OUTCOME_WIDTH = 26
"""Fits the longest outcome with the policy's reason: ``suppressed (unsubscribed)``."""


def _row(decision: dict[str, str]) -> str:
    """One table row: the outcome with the policy's reason, then why the trigger fired."""
    at = decision.get("occurred_at") or decision.get("decided_at") or ""
    outcome = decision["outcome"] + (f" ({decision['reason']})" if decision.get("reason") else "")
    return (
        f"{at[:19]:<20} {decision['customer_id'][:12]:<12} {decision['trigger_type']:<22} "
        f"{decision.get('tier') or '-':<12} {outcome:<{_OUTCOME_WIDTH}} "
        f"{decision.get('trigger_reason') or '-'}"
    )


def _summary(counts: Counter[tuple[str, str]]) -> str:
    lines = ["", "decisions by trigger type and outcome:"]
    for (trigger_type, outcome), count in sorted(counts.items()):
        lines.append(f"  {trigger_type:<22} {outcome:<12} {count:>6}")
    if not counts:
        lines.append("  none yet")
    lines.append("lift so far: .venv/bin/nudge report")
    return "\n".join(lines)


@contextmanager
def _process(
    args: list[str], env: dict[str, str], *, quiet: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    nudge = Path(sys.executable).with_name("nudge")
    stderr = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(nudge), *args], env=env, stdout=subprocess.DEVNULL, stderr=stderr
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    raise SystemExit(main())
