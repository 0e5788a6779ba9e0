"""How the library hangs together: no import cycle between its modules (lazy imports inside
functions included: they hide a cycle, they do not remove it), and no module reaches a
``_private`` name of another package."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

ROOTS = {"mspa_tasks": REPO / "mspa_tasks", "mspa_airflow": REPO / "plugins" / "mspa_airflow"}
OTHER = [*(REPO / "dags").glob("*.py"), *(REPO / "bench").glob("*.py"),
         *(REPO / "scripts").glob("*.py")]


def _modules() -> dict[str, Path]:
    out = {}
    for top, root in ROOTS.items():
        for path in root.rglob("*.py"):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package(module: str) -> str:
    """A module's package: ``mspa_tasks.compose`` for ``mspa_tasks.compose.shards``; a
    top-level module of the library is its own package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or module in ROOTS else module


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import, at any depth."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def _resolve(module: str, name: str) -> str:
    """``from module import name``: the submodule when ``name`` is one, else ``module``."""
    return f"{module}.{name}" if f"{module}.{name}" in MODULES else module


def test_no_import_cycle_between_library_modules():
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names in _imports(ast.parse(path.read_text())):
            for dep in ({_resolve(target, n) for n in names} or {target}):
                if dep in MODULES and dep != module:
                    graph[module].add(dep)
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_module_reaches_a_private_name_of_another_package():
    found = []
    for path in [*MODULES.values(), *OTHER]:
        module = next((m for m, p in MODULES.items() if p == path), path.stem)
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    target = _resolve(node.module, a.name)
                    if target in MODULES:
                        aliases[a.asname or a.name] = target
                    elif a.name.startswith("_") and node.module in MODULES \
                            and _package(node.module) != _package(module):
                        found.append(f"{path.relative_to(REPO)}: from {node.module} import "
                                     f"{a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and node.value.id in aliases \
                    and _package(aliases[node.value.id]) != _package(module):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: "
                             f"{aliases[node.value.id]}.{node.attr}")
    assert found == []
