"""The Examples in the profile core's docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.unit

MODULES = ["attributes", "cart", "engagement", "frozen", "money", "profile", "purchases"]
MODULES += ["reducer", "rfm", "session"]
WITH_EXAMPLES = {"engagement", "profile", "purchases", "reducer", "rfm"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"streams.core.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name in WITH_EXAMPLES:
        assert result.attempted > 0
