"""Draw the dashboards' main panels as a PNG from a real run (``make dashboard-preview``).

Grafana cannot run here, so this shows what its panels would: it starts a
Kafka broker (an ephemeral local one, or ``KAFKA_BOOTSTRAP_SERVERS``), a
Nudge worker, the simulated shop (plus a trickle of garbage for the
dead-letter panels) and a Prometheus scraping the worker with Nudge's rules,
then asks Prometheus for the same queries the dashboards use and plots them
with matplotlib. Everything it starts is stopped by PID at the end.

``python deploy/grafana/preview.py [--seconds 150] [--out deploy/grafana/preview.png]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from deploy.prometheus.local import Prometheus, free_port, running_prometheus  # noqa: E402
from streams.localkafka import LocalKafka  # noqa: E402

# (dashboard file, panel title) of the panels drawn, in reading order.
PANELS = (
    ("nudge-pipeline.json", "Events consumed by topic"),
    ("nudge-pipeline.json", "Consumer lag by topic"),
    ("nudge-pipeline.json", "Profiles held"),
    ("nudge-pipeline.json", "Dead letters by topic and reason"),
    ("nudge-pipeline.json", "Processing time per event"),
    ("nudge-pipeline.json", "Dead-letter share by topic"),
)
VARIABLES = {"$__rate_interval": "30s", "$instance": ".*"}
KINDS = ("clickstream", "cart", "email", "customers")
GARBAGE = (b'{"type": "cart_add", ', b"\xff\xfe", b'{"type": "cart_teleport"}', b"")


def panel(file: str, title: str) -> dict[str, Any]:
    """Find a dashboard panel by title."""
    dashboard = json.loads((HERE / "dashboards" / file).read_text())
    for candidate in dashboard["panels"]:
        if candidate["title"] == title:
            return dict(candidate)
    raise KeyError(f"{file} has no panel {title!r}")


def substitute(expr: str) -> str:
    """Replace Grafana's variables the way Grafana would for this run."""
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@contextmanager
def broker(workdir: Path) -> Iterator[str]:
    """Bootstrap address of ``KAFKA_BOOTSTRAP_SERVERS``, or of an ephemeral local broker."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external
        return
    local = LocalKafka.ephemeral(workdir / "kafka")
    local.start()
    try:
        yield local.bootstrap_servers
    finally:
        local.stop()


def nudge_environment(bootstrap: str, suffix: str, port: int) -> dict[str, str]:
    """Environment for a worker and the simulator on topics of their own."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
    variables |= {
        "NUDGE_APP_ID": f"nudge-preview-{suffix}",
        "NUDGE_BOOTSTRAP_SERVERS": bootstrap,
        "NUDGE_TOPIC_PARTITIONS": "4",
        "NUDGE_WEB_PORT": str(port),
        "NUDGE_LOG_FORMAT": "json",
        "NUDGE_COMMIT_INTERVAL_SECONDS": "1",
        "NUDGE_CONSUMER_SESSION_TIMEOUT_SECONDS": "10",
        "NUDGE_TOPIC_DEADLETTER": f"events.deadletter-{suffix}",
        "NUDGE_TOPIC_PROFILES": f"profiles-{suffix}",
    }
    for kind in KINDS:
        variables[f"NUDGE_TOPIC_{kind.upper()}"] = f"{kind}-{suffix}"
    return variables


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command``, logging to ``log``; stop it by PID on exit."""
    with log.open("wb") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            yield child
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


def wait_for_metrics(port: int, worker: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until the worker serves /metrics."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("the worker did not serve /metrics in time")


def publish_garbage(bootstrap: str, suffix: str, seconds: float) -> None:
    """Publish a few undecodable messages a second, for the dead-letter panels."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        deadline, n = time.monotonic() + seconds, 0
        while time.monotonic() < deadline:
            kind = KINDS[n % len(KINDS)]
            producer.send(f"{kind}-{suffix}", key=f"cust-{n % 50}".encode(), value=GARBAGE[n % 4])
            n += 1
            time.sleep(0.5 if n % 40 < 20 else 0.1)
        producer.flush()
    finally:
        producer.close()


def draw(prometheus: Prometheus, start: float, end: float, out: Path) -> None:
    """Plot each panel's queries over [start, end] into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 2, figsize=(14, 11), constrained_layout=True)
    for axis, (file, title) in zip(axes.flat, PANELS, strict=True):
        spec = panel(file, title)
        unit = spec["fieldConfig"]["defaults"].get("unit", "short")
        for target in spec["targets"]:
            for series in prometheus.query_range(substitute(target["expr"]), start, end, 2):
                legend = target["legendFormat"]
                for label, value in series["metric"].items():
                    legend = legend.replace("{{" + label + "}}", value).replace("$", r"\$")
                times = [float(t) - start for t, _ in series["values"]]
                values = [float(v) for _, v in series["values"]]
                if unit == "s":
                    values = [v * 1000 for v in values]
                axis.plot(times, values, label=legend, linewidth=1.2)
        shown = spec["targets"][0]["expr"].replace("$", r"\$")  # not matplotlib's math mode
        axis.set_title(f"{title}\n{shown[:95]}", fontsize=8)
        axis.set_xlabel("seconds into the run", fontsize=8)
        axis.set_ylabel(
            {"ops": "per second", "s": "milliseconds", "percentunit": "share"}.get(unit, ""),
            fontsize=8,
        )
        axis.tick_params(labelsize=7)
        if axis.get_lines():
            axis.legend(fontsize=6, ncol=2, loc="upper left")
    figure.suptitle("Nudge / Pipeline: panels drawn from Prometheus queries of a real run")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)


def main(argv: list[str] | None = None) -> int:
    """Run the stack for ``--seconds``, then draw the panels."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--out", type=Path, default=HERE / "preview.png")
    args = parser.parse_args(argv)
    nudge = str(Path(sys.executable).with_name("nudge"))
    suffix, port = uuid.uuid4().hex[:8], free_port()
    with tempfile.TemporaryDirectory(prefix="nudge-preview-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        bootstrap = stack.enter_context(broker(workdir))
        env = nudge_environment(bootstrap, suffix, port)
        worker = stack.enter_context(
            process([nudge, "worker", "-l", "info"], env, workdir / "w.log")
        )
        wait_for_metrics(port, worker)
        prometheus = stack.enter_context(
            running_prometheus(workdir / "prometheus", [f"127.0.0.1:{port}"], interval="2s")
        )
        start = time.time()
        simulate = [nudge, "simulate", "--customers", "2000", "--days", "14", "--rate", "100"]
        simulate += ["--max-seconds", str(args.seconds * 0.8)]
        stack.enter_context(process(simulate, env, workdir / "simulate.log"))
        publish_garbage(bootstrap, suffix, args.seconds * 0.6)
        time.sleep(max(args.seconds - (time.time() - start), 0))
        draw(prometheus, start, time.time(), args.out)
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
