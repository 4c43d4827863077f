"""``nudge report``: conversion rates per trigger type, treated against holdout.

The workers count decisions and attributed conversions in Prometheus
metrics; the report reads every worker's ``/metrics`` page, adds them up
and prints, for each trigger type, how many customers each arm exposed, how
many of them converted within the attribution window, the rates and the
lift, with the counts behind every number so a reader can judge the noise.
"""

from __future__ import annotations

import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

_EXPOSED = {"sent": "treatment", "deferred": "treatment", "holdout": "holdout"}


@dataclass(frozen=True)
class ArmCounts:
    """Exposures and conversions of one arm of one trigger type."""

    exposed: float = 0.0
    converted: float = 0.0

    @property
    def rate(self) -> float | None:
        """Conversions per exposure; None before any exposure."""
        return self.converted / self.exposed if self.exposed else None


def tally(pages: Iterable[str]) -> dict[str, dict[str, ArmCounts]]:
    """Add up decisions and conversions from Prometheus text pages, by trigger type and arm."""
    exposed: defaultdict[tuple[str, str], float] = defaultdict(float)
    converted: defaultdict[tuple[str, str], float] = defaultdict(float)
    for page in pages:
        for family in text_string_to_metric_families(page):
            for sample in family.samples:
                labels = sample.labels
                if sample.name == "nudge_trigger_decisions_total":
                    arm = _EXPOSED.get(labels.get("outcome", ""))
                    if arm is not None:
                        exposed[(labels["trigger_type"], arm)] += sample.value
                elif sample.name == "nudge_attribution_conversions_total":
                    converted[(labels["trigger_type"], labels["arm"])] += sample.value
    table: dict[str, dict[str, ArmCounts]] = {}
    for trigger_type, arm in sorted(set(exposed) | set(converted)):
        counts = ArmCounts(exposed[(trigger_type, arm)], converted[(trigger_type, arm)])
        table.setdefault(trigger_type, {})[arm] = counts
    return table


def render(table: dict[str, dict[str, ArmCounts]]) -> str:
    """Format the tally as a fixed-width table."""
    header = (
        f"{'trigger type':<24}{'treated':>9}{'conv':>7}{'rate':>8}"
        f"{'holdout':>9}{'conv':>7}{'rate':>8}{'lift':>8}"
    )
    lines = [header, "-" * len(header)]
    for trigger_type, arms in table.items():
        treated, held = arms.get("treatment", ArmCounts()), arms.get("holdout", ArmCounts())
        lift = (
            f"{treated.rate / held.rate - 1:+.0%}"
            if treated.rate is not None and held.rate
            else "n/a"
        )
        lines.append(
            f"{trigger_type:<24}{treated.exposed:>9.0f}{treated.converted:>7.0f}"
            f"{_percent(treated.rate):>8}{held.exposed:>9.0f}{held.converted:>7.0f}"
            f"{_percent(held.rate):>8}{lift:>8}"
        )
    if not table:
        lines.append("no trigger decisions yet")
    return "\n".join(lines)


def fetch(urls: Iterable[str]) -> list[str]:
    """Read each worker's metrics page."""
    pages = []
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http(s) URLs
            pages.append(response.read().decode())
    return pages


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"
