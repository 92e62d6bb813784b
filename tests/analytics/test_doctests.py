"""The docstring examples of the analytics modules run and pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["fold", "loaders", "trends", "export", "simulate", "audit", "olist", "charts"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests_pass(name: str) -> None:
    module = importlib.import_module(f"analytics.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
