"""The Examples in the pure core's docstrings run, so they stay true.

Every module of the core packages is collected, so a new module's examples
are tested without anyone remembering to list it.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

PACKAGES = ("schemas", "online_models", "streams.core")


def core_modules() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package: ModuleType = importlib.import_module(package_name)
        names.append(package_name)
        prefix = f"{package_name}."
        names += [info.name for info in pkgutil.walk_packages(package.__path__, prefix)]
    return sorted(names)


@pytest.mark.parametrize("name", core_modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_documented_public_api_has_examples() -> None:
    attempted = {
        name: doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS).attempted
        for name in ("schemas.codec", "streams.core.reducer", "streams.core.clock")
    }
    assert all(attempted.values()), attempted
