"""Profile one worker on pre-produced events: where a worker's CPU goes, per event.

The benchmark (``benchmarks.run``) says how fast a worker is; this says why.
It starts a local broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``), pre-produces
a simulated sample exactly as the benchmark does, runs one ``nudge worker``
under ``cProfile`` until it has consumed every event, stops it with SIGTERM
and prints the functions ranked by own time and by cumulative time, in
microseconds per event. cProfile slows Python code by a roughly constant
factor, so the ranking is what to read, not the absolute rate.

    .venv/bin/python -m benchmarks.profile_worker --events 30000 --out /tmp/w.prof
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import cProfile
import gc
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import (
    Options,
    Report,
    broker,
    create_worker_topics,
    follow_workers,
    log,
    setup,
    worker_variables,
)
from benchmarks.stats import steady_window
from tests.support.worker import scrape, stop

RUNNER = "--run-worker"


def run_worker(out: str, profile: bool) -> None:
    """Run ``nudge worker`` in this process, under cProfile if ``profile``.

    The profile is written however the worker ends, and the cyclic garbage
    collector's pauses (count, total, longest) are printed to the worker's
    log: a table of frozen values is millions of tracked objects, and a full
    collection walks all of them.
    """
    from streams.cli import main as nudge_main  # imported here: only the child builds a worker

    pauses: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif info["generation"] == 2:
            pauses.append(time.perf_counter() - started[0])
        else:
            pauses.append(-(time.perf_counter() - started[0]))  # young generations: negative

    gc.callbacks.append(on_gc)
    profiler = cProfile.Profile()
    written = False

    def dump() -> None:
        nonlocal written
        if written:
            return
        written = True
        if profile:
            profiler.disable()
            profiler.dump_stats(out)
        full = [p for p in pauses if p >= 0]
        young = [-p for p in pauses if p < 0]
        print(
            f"GC: {len(young)} young collections {sum(young):.2f} s; "
            f"{len(full)} full collections {sum(full):.2f} s, longest {max(full, default=0):.3f} s",
            flush=True,
        )

    atexit.register(dump)
    sys.argv = ["nudge", "worker", "-l", "info"]
    if profile:
        profiler.enable()
    try:
        nudge_main()
    finally:
        dump()


def wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    """Wait until the worker's /metrics page answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}")
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"worker not ready in {timeout}s")


def report(path: Path, events: int, top: int) -> None:
    """Print the profile ranked by own time and by cumulative time, in us per event."""
    stats = pstats.Stats(str(path))
    rows = stats.stats  # type: ignore[attr-defined]
    ranked = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)
    total = sum(row[2] for row in rows.values())
    print(f"\ntotal profiled time {total:.1f} s = {total / events * 1e6:,.0f} us/event")
    print(f"\n{'own us/ev':>10} {'cum us/ev':>10} {'calls/ev':>9}  function")
    for (file, line, name), (_, calls, own, cum, _callers) in ranked[:top]:
        where = f"{Path(file).name}:{line}({name})"
        print(
            f"{own / events * 1e6:10.1f} {cum / events * 1e6:10.1f} {calls / events:9.2f}  {where}"
        )
    print(f"\n{'cum us/ev':>10} {'own us/ev':>10} {'calls/ev':>9}  function (cumulative)")
    for (file, line, name), (_, calls, own, cum, _callers) in sorted(
        rows.items(), key=lambda item: item[1][3], reverse=True
    )[:top]:
        where = f"{Path(file).name}:{line}({name})"
        print(
            f"{cum / events * 1e6:10.1f} {own / events * 1e6:10.1f} {calls / events:9.2f}  {where}"
        )


def main(argv: list[str] | None = None) -> int:
    """Pre-produce, run a profiled worker to the end of the events, print the ranking."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [RUNNER]:
        run_worker(args[1], profile=args[2:3] != ["--no-profile"])
        return 0
    parser = argparse.ArgumentParser(prog="benchmarks.profile_worker", description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument(
        "--out", type=Path, default=Path(tempfile.gettempdir()) / "nudge-worker.prof"
    )
    parser.add_argument("--no-profile", action="store_true", help="run the worker unprofiled")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NUDGE_NAME=VALUE",
        help="a worker setting (repeatable), e.g. the latency run's NUDGE_HIGH_INTENT_THRESHOLD=0",
    )
    parsed = parser.parse_args(args)
    options = Options(
        events=parsed.events,
        customers=parsed.customers,
        sim_days=3.0,
        partitions=parsed.partitions,
        latency_seconds=0.0,
        offered_rate=None,
        probe_every=10,
        restore_sizes=(),
        seed=parsed.seed,
        quick=True,
        keep=False,
        out_dir=Path(tempfile.gettempdir()),
    )
    with tempfile.TemporaryDirectory(prefix="nudge-profile-") as tmp:
        work = Path(tmp)
        with broker(work) as kafka:
            bench = setup(options, work, Report(), kafka.bootstrap)
            env = bench.env
            app_id = f"nudge-profile-{env.suffix}"
            variables = worker_variables(env, app_id)
            create_worker_topics(bench.settings, variables)
            child = {k: v for k, v in os.environ.items() if not k.startswith("NUDGE_")}
            child.update(env.variables())
            child.update(variables)
            child.update(setting.split("=", 1) for setting in parsed.set)
            child["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
            command = [sys.executable, "-m", "benchmarks.profile_worker", RUNNER, str(parsed.out)]
            if parsed.no_profile:
                command.append("--no-profile")
            log(f"worker: {' '.join(command)}")
            with parsed.out.with_suffix(".log").open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    command, env=child, stdout=out, stderr=subprocess.STDOUT, cwd=work
                )
                try:
                    wait_ready(process, env.web_port, 120)
                    followed = follow_workers([(process, env.web_port)], bench.n, 600)
                    window = steady_window(followed.samples, bench.n)
                    log(
                        f"worker: {window.rate:,.0f} events/s, "
                        f"{(window.cpu_seconds or 0) / window.events * 1e6:,.0f} CPU us/event"
                    )
                finally:
                    process.send_signal(signal.SIGTERM)
                    stop(process, grace=60)
            asyncio.set_event_loop(None)
    if not parsed.no_profile:
        report(parsed.out, bench.n, parsed.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
