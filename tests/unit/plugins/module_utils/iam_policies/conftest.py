"""Fixtures for the policy tests: import parliament (the IAM policy linter) even where ``pkg_resources`` is gone.

parliament 1.6.4 calls ``pkg_resources.resource_filename`` at import; setuptools >= 81 no longer ships
``pkg_resources``. The shim implements just that call, only when the real module is missing.
"""

from __future__ import annotations

import pytest

import importlib.util
import os
import sys
import types


@pytest.fixture(scope="session")
def parliament():
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            spec = importlib.util.find_spec(package)
            return os.path.join(list(spec.submodule_search_locations)[0], name)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    import parliament

    return parliament
