"""The learning loop through the real broker: labels, one trainer, snapshots, scoring."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.localkafka import free_port
from tests.support.kafka_io import latest_by_key, publish, read_all, wait_for
from tests.support.learning import SETTINGS, T0, order, profile, view
from tests.support.worker import WorkerEnv, running_worker, scrape

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("apart", [False, True], ids=["in-the-worker", "nudge-trainer"])
def test_outcomes_label_snapshots_one_trainer_learns_and_workers_score_with_it(
    kafka_bootstrap: str, tmp_path: Path, apart: bool
) -> None:
    """The trainer learns in the worker, or (``apart``) in a ``nudge trainer`` process."""
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=2)
    trainer_port = free_port()
    buyers = [f"buyer-{n}" for n in range(30)]
    browsers = [f"browser-{n}" for n in range(30)]
    clicks = [(env.topic("clickstream"), *view(c, T0)) for c in buyers + browsers]
    orders = [(env.topic("cart"), *order(c, T0 + timedelta(hours=2))) for c in buyers]
    # A day later, every partition's clock passes the browsers' 24-hour horizon.
    later = [
        (env.topic("clickstream"), *view(f"late-{n}", T0 + timedelta(hours=30))) for n in range(20)
    ]

    with ExitStack() as running:
        if apart:
            trainer = {**SETTINGS, "NUDGE_WEB_PORT": str(trainer_port)}
            log = tmp_path / "trainer.log"
            running.enter_context(running_worker(env, log, extra=trainer, command="trainer"))
        worker = {**SETTINGS, "NUDGE_TRAIN_IN_WORKER": str(not apart).lower()}
        running.enter_context(running_worker(env, tmp_path / "worker.log", extra=worker))
        publish(kafka_bootstrap, clicks)
        wait_for(
            lambda: all(profile(env.web_port, c)["profile"]["scores"] for c in buyers),
            timeout=60,
            what="every view scored",
        )
        publish(kafka_bootstrap, orders)
        # Topics are consumed side by side, not in event-time order: let the
        # orders land before the clock moves a day on, as they would live.
        wait_for(
            lambda: all(
                profile(env.web_port, c)["profile"]["purchases"]["order_ids"] for c in buyers
            ),
            timeout=60,
            what="every order applied",
        )
        publish(kafka_bootstrap, later)

        examples = wait_for(
            lambda: (
                (found := read_all(kafka_bootstrap, env.topic("training")))
                and len(found) >= 60
                and found
            ),
            timeout=120,
            what="a labelled example for every scored customer",
        )
        labels = [orjson.loads(r.value or b"null") for r in examples]
        assert sum(e["label"] for e in labels) == len(buyers)
        assert sum(not e["label"] for e in labels) == len(browsers)
        # Each snapshot is labelled once.
        assert len({(e["model"], e["customer_id"], e["taken_at"]) for e in labels}) == len(labels)

        changelog = env.changelog("model-snapshots")
        snapshots = wait_for(
            lambda: (
                b"purchase" in latest_by_key(read_all(kafka_bootstrap, changelog))
                and latest_by_key(read_all(kafka_bootstrap, changelog))
            ),
            timeout=60,
            what="a published purchase-model snapshot",
        )
        assert b"trainer" in snapshots

        # Scored before the model was warm: the prior. After: the learned model.
        assert (
            profile(env.web_port, buyers[0])["profile"]["scores"]["purchase"]["model_version"]
            == "prior"
        )
        publish(
            kafka_bootstrap,
            [(env.topic("clickstream"), *view("newcomer", T0 + timedelta(hours=31)))],
        )

        def version() -> str | None:
            scores = profile(env.web_port, "newcomer")["profile"]["scores"]
            found = scores.get("purchase", {}).get("model_version")
            return found if found and found != "prior" else None

        assert wait_for(version, timeout=60, what="a score from the learned model").startswith(
            "purchase-v"
        )
        learner, bystander = (trainer_port, env.web_port) if apart else (env.web_port, None)
        wait_for(
            lambda: learned(scrape(learner)) >= len(labels),
            timeout=60,
            what="every example learned by the trainer",
        )
        if bystander is not None:
            assert learned(scrape(bystander)) == 0  # the worker left learning to the trainer


def learned(metrics: str) -> float:
    """Examples a process's trainer learned, from its /metrics page."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "nudge_model_examples_learned"
        for sample in family.samples
        if sample.name.endswith("_total")
    )
