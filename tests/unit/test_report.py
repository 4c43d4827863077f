import pytest

from streams.report import ArmCounts, render, tally

pytestmark = pytest.mark.unit

WORKER_A = """# TYPE nudge_trigger_decisions_total counter
nudge_trigger_decisions_total{trigger_type="cart_abandonment",outcome="sent"} 90.0
nudge_trigger_decisions_total{trigger_type="cart_abandonment",outcome="holdout"} 5.0
nudge_trigger_decisions_total{trigger_type="cart_abandonment",outcome="suppressed"} 40.0
# TYPE nudge_attribution_conversions_total counter
nudge_attribution_conversions_total{trigger_type="cart_abandonment",arm="treatment"} 18.0
nudge_attribution_conversions_total{trigger_type="cart_abandonment",arm="holdout"} 1.0
"""
WORKER_B = """# TYPE nudge_trigger_decisions_total counter
nudge_trigger_decisions_total{trigger_type="cart_abandonment",outcome="deferred"} 10.0
nudge_trigger_decisions_total{trigger_type="cart_abandonment",outcome="holdout"} 5.0
# TYPE nudge_attribution_conversions_total counter
nudge_attribution_conversions_total{trigger_type="cart_abandonment",arm="treatment"} 2.0
nudge_attribution_conversions_total{trigger_type="cart_abandonment",arm="holdout"} 0.0
"""


def test_workers_add_up_and_only_sendable_outcomes_count_as_exposures() -> None:
    table = tally([WORKER_A, WORKER_B])
    assert table == {
        "cart_abandonment": {
            "holdout": ArmCounts(exposed=10, converted=1),
            "treatment": ArmCounts(exposed=100, converted=20),
        }
    }


def test_the_table_shows_counts_rates_and_lift() -> None:
    text = render(tally([WORKER_A, WORKER_B]))
    row = text.splitlines()[2].split()
    assert row == ["cart_abandonment", "100", "20", "20.0%", "10", "1", "10.0%", "+100%"]


def test_no_holdout_conversions_means_no_lift_to_claim() -> None:
    text = render({"browse_abandonment": {"treatment": ArmCounts(10, 2)}})
    assert text.splitlines()[2].split()[-1] == "n/a"
    assert "no trigger decisions yet" in render({})
