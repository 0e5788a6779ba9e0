"""Load a bench script (bench/ is not a package) as a module, for its tests."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from tests.conftest import REPO


def load_bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
