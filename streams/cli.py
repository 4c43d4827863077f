"""The ``nudge`` command: Faust's CLI for this app, plus Nudge's own commands.

``nudge worker -l info`` runs a worker exactly as Faust would; project
commands (``nudge kafka start``...) are Faust commands too, so they share its
option parsing, help and exit codes.
"""

from __future__ import annotations

from typing import Any

import click
from faust.cli import Command, argument, option

from streams import localkafka
from streams.app import build
from streams.settings import load_settings


class kafka(Command):
    """Start, stop or ask about the local single-node Kafka broker (development)."""

    options = [  # noqa: RUF012 - Faust's Command declares it a list attribute
        argument("action", type=click.Choice(["start", "stop", "status"])),
        option("--port", type=int, default=9092, show_default=True, help="Client port."),
    ]

    async def run(self, action: str, port: int, **_: Any) -> None:
        """Do ``action`` on the developer broker and exit with its status code."""
        code = localkafka.run_command(action, port=port)  # type: ignore[arg-type]
        if code:
            raise SystemExit(code)


def main() -> None:
    """Entry point of the ``nudge`` console script."""
    build(load_settings()).app.main()
