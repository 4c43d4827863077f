"""The worker's tables are the ones whose changelogs it creates up front."""

from __future__ import annotations

import pytest

from streams.app import build
from streams.settings import Settings
from streams.topics import CHANGELOGS, topic_specs

pytestmark = pytest.mark.unit


def test_every_table_changelog_is_created_before_faust_looks_for_it() -> None:
    settings = Settings(topic_partitions=3, app_id="shop-a")
    nudge = build(settings)
    tables = {table.name: table for table in nudge.app.tables.values()}
    assert set(tables) == set(CHANGELOGS)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    for table in tables.values():
        spec = specs[table.changelog_topic.get_topic_name()]
        assert spec.partitions == table.partitions
        assert spec.configs["cleanup.policy"] == "compact"
