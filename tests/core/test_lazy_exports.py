"""The packages that load their names on first use: ``__all__`` lists them all, each loads."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("package", ["cxr_desktop.core.data", "cxr_desktop.core.infer",
                                     "cxr_desktop.core.train"])
def test_all_lists_every_lazy_name_and_each_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module._EXPORTS)
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
