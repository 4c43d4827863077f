"""The profile API through two real workers sharing the partitions, behind a token."""

from __future__ import annotations

import dataclasses
import random
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from streams.localkafka import free_port
from tests.support.events import BASE_TIME, encode, valid_event
from tests.support.kafka_io import publish, wait_for
from tests.support.worker import WorkerEnv, running_worker

pytestmark = pytest.mark.integration

TOKEN = "test-token-0123456789abcdef"
CUSTOMERS = [f"api-{n:03d}" for n in range(40)]


def get(port: int, customer: str, token: str | None = TOKEN) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/customers/{customer}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def answered_everywhere(ports: list[int]) -> bool:
    return all(get(port, customer)[0] == 200 for port in ports for customer in CUSTOMERS)


def test_any_worker_answers_for_any_customer_and_only_with_the_token(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(3)
    first = WorkerEnv.fresh(kafka_bootstrap, partitions=4)
    second = dataclasses.replace(first, web_port=free_port())
    token = {"NUDGE_API_TOKEN": TOKEN}
    with (
        running_worker(first, tmp_path / "worker-a.log", extra=token),
        running_worker(second, tmp_path / "worker-b.log", extra=token),
    ):
        publish(
            kafka_bootstrap,
            [
                (
                    first.topic("clickstream"),
                    c.encode(),
                    encode(valid_event(rng, "clickstream", c, BASE_TIME)),
                )
                for c in CUSTOMERS
            ],
        )
        # Each worker owns some partitions; each answers for every customer by
        # forwarding to the owner.
        wait_for(
            lambda: answered_everywhere([first.web_port, second.web_port]),
            timeout=120,
            what="both workers to answer for all customers",
        )
        status, body = get(first.web_port, CUSTOMERS[0])
        assert status == 200
        assert body["customer_id"] == CUSTOMERS[0]

        assert get(first.web_port, CUSTOMERS[0], token=None)[0] == 401
        assert get(second.web_port, CUSTOMERS[0], token="wrong-token")[0] == 401
        assert get(first.web_port, "nobody-by-that-id")[0] == 404
