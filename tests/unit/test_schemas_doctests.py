"""The Examples in the schemas docstrings run, so they stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.unit

MODULES = ["cart", "clickstream", "codec", "common", "customers", "deadletter", "email"]
MODULES += ["envelope", "export"]
WITH_EXAMPLES = {"codec", "deadletter", "envelope"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"schemas.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name in WITH_EXAMPLES:
        assert result.attempted > 0
