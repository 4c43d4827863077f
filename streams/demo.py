"""``make demo``: a local broker and a Nudge worker on it, stopped together on Ctrl-C.

The demo owns what it starts: the broker and the worker are child processes
stopped by their PIDs when the demo ends, however it ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from streams import localkafka
from streams.settings import load_settings


def main() -> int:
    """Run the demo until Ctrl-C; return the exit code."""
    settings = load_settings()
    broker = localkafka.developer_broker()
    started_broker = not broker.status().running
    if started_broker:
        print(f"starting the local Kafka broker on {broker.bootstrap_servers} ...", flush=True)
        broker.start()
    env = {**os.environ, "NUDGE_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    nudge = Path(sys.executable).with_name("nudge")
    worker = subprocess.Popen([str(nudge), "worker", "-l", "info"], env=env)  # noqa: S603
    print(
        f"worker pid {worker.pid}; metrics at "
        f"http://{settings.web_bind}:{settings.web_port}/metrics; Ctrl-C stops everything",
        flush=True,
    )
    try:
        return worker.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if started_broker:
            broker.stop()


if __name__ == "__main__":
    raise SystemExit(main())
