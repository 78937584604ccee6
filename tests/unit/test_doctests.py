"""Run the examples in the docstrings, so they never rot."""

import doctest
import importlib
import pkgutil

import pytest

import streamvae

MODULES = sorted(m.name for m in pkgutil.walk_packages(streamvae.__path__, prefix="streamvae."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
