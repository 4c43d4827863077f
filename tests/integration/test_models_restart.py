"""A worker killed and restarted scores with the restored model snapshot, and trains on from it.

Through the real broker: views are scored, orders and the passing of the
horizon label them, the trainer learns and publishes snapshots to the
``model-snapshots`` global table; a probe customer is scored with the learned
model; the worker is SIGKILLed and started again with the same settings. An
identical probe (a new customer, the same product view at the same instant,
so the same features) must then get the same model version and the very same
probability, which the snapshot decoded from the table's changelog also
gives; and the restarted trainer must resume from its snapshot (the next
snapshot counts on from the examples learned before the kill).
"""

from __future__ import annotations

import signal
import uuid
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from online_models.features import features
from online_models.propensity import PropensityModel
from schemas.clickstream import ProductView
from streams.core.profile import Profile
from streams.core.reducer import ProfileConfig, apply
from tests.support.kafka_io import latest_by_key, publish, read_all, wait_for
from tests.support.learning import SETTINGS as LEARNING
from tests.support.learning import T0, order, profile, view
from tests.support.worker import Supervisor, WorkerEnv, running_worker

pytestmark = pytest.mark.integration

PROBE_AT = T0 + timedelta(hours=31)
# Snapshots only by count, so the versions in this test are exact.
SETTINGS = LEARNING | {"NUDGE_SNAPSHOT_EVERY_SECONDS": "3600"}


def purchase_snapshot(bootstrap: str, env: WorkerEnv) -> PropensityModel | None:
    """The latest purchase-model snapshot in the snapshot table's changelog, decoded."""
    blob = latest_by_key(read_all(bootstrap, env.changelog("model-snapshots"))).get(b"purchase")
    return None if blob is None else PropensityModel.restore(blob)


def stored_score(port: int, customer: str) -> dict[str, Any] | None:
    """The customer's stored purchase score, once there is one."""
    score = profile(port, customer)["profile"]["scores"].get("purchase")
    return dict(score) if score else None


def probe_features() -> dict[str, float]:
    """The features a worker computes for a probe: a new customer's first product view."""
    probe = ProductView(
        event_id=str(uuid.uuid4()),
        customer_id="probe",
        occurred_at=PROBE_AT,
        product_id="sku-1",
        price=Decimal("30.00"),
        currency="EUR",
    )
    config = ProfileConfig()
    state = apply(None, probe, config).profile
    assert isinstance(state, Profile)
    return features(state, probe, PROBE_AT, config)


def test_a_restarted_worker_scores_with_the_restored_snapshot_and_trains_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = WorkerEnv.fresh(kafka_bootstrap, partitions=2)
    clickstream, cart = env.topic("clickstream"), env.topic("cart")
    buyers = [f"buyer-{n}" for n in range(30)]
    browsers = [f"browser-{n}" for n in range(30)]

    with running_worker(env, tmp_path / "before.log", extra=SETTINGS) as worker:
        publish(kafka_bootstrap, [(clickstream, *view(c, T0)) for c in buyers + browsers])
        wait_for(
            lambda: all(profile(env.web_port, c)["profile"]["scores"] for c in buyers + browsers),
            timeout=60,
            what="every view scored",
        )
        publish(kafka_bootstrap, [(cart, *order(c, T0 + timedelta(hours=2))) for c in buyers])
        # Topics are consumed side by side: let the orders land before the
        # clock moves a day on, or the horizon could pass first.
        wait_for(
            lambda: all(
                profile(env.web_port, c)["profile"]["purchases"]["order_ids"] for c in buyers
            ),
            timeout=60,
            what="every order applied",
        )
        # A day later every partition's clock passes the browsers' horizon.
        later = T0 + timedelta(hours=30)
        publish(kafka_bootstrap, [(clickstream, *view(f"late-{n}", later)) for n in range(20)])

        # 60 labelled examples, a snapshot every 20: the third has learned them all.
        model = wait_for(
            lambda: (
                (found := purchase_snapshot(kafka_bootstrap, env)) is not None
                and found.examples == 60
                and found
            ),
            timeout=120,
            what="a snapshot of the purchase model after all 60 examples",
        )
        assert (model.version, model.positives) == (3, 30)
        assert model.warm

        publish(kafka_bootstrap, [(clickstream, *view("probe-before", PROBE_AT))])
        before = wait_for(
            lambda: stored_score(env.web_port, "probe-before"),
            timeout=60,
            what="the probe scored",
        )
        assert before["model_version"] == "purchase-v3"

        worker.kill()  # SIGKILL: no shutdown, no final commit or flush
        worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL

    with ExitStack() as stack:
        # Stands in for the supervisor: restarts the worker if the stall
        # watchdog makes it exit (a stall that is not recovered fails here).
        after_kill = Supervisor(env, tmp_path, stack, extra=SETTINGS, name="after")
        after_kill.start()
        publish(kafka_bootstrap, [(clickstream, *view("probe-after", PROBE_AT))])
        after = wait_for(
            lambda: after_kill.check() or stored_score(env.web_port, "probe-after"),
            timeout=120,
            what="the probe scored after the restart",
        )
        # The same snapshot, the same prediction for the same features (a
        # worker that lost the snapshot table would answer with the prior).
        assert after["model_version"] == before["model_version"]
        assert after["probability"] == before["probability"]
        restored = purchase_snapshot(kafka_bootstrap, env)
        assert restored is not None
        assert restored.prediction(probe_features()).probability == after["probability"]

        # The trainer resumes from its snapshot: two days on, the 20 late
        # views and the 2 probes expire unbought; the 20th example after the
        # restart publishes version 4, counting on from 60 examples (a fresh
        # trainer would publish version 1 of 20).
        two_days = T0 + timedelta(hours=56)
        publish(kafka_bootstrap, [(clickstream, *view(f"later-{n}", two_days)) for n in range(20)])
        resumed = wait_for(
            lambda: (
                not after_kill.check()
                and (found := purchase_snapshot(kafka_bootstrap, env)) is not None
                and found.version > 3
                and found
            ),
            timeout=120,
            what="a snapshot published by the restarted trainer",
        )
        assert (resumed.version, resumed.examples, resumed.positives) == (4, 80, 30)
