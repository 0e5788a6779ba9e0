"""How the library hangs together: no import cycle between its modules (lazy imports inside
functions included: they hide a cycle, they do not remove it), and no module reaches a
``_private`` name of another package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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


# The layers, bottom up (docs/architecture.md, "Layers"). A package may import its own layer's
# core packages and any layer below; a stage never imports another stage: it reads their
# outputs through the catalog (mspa_tasks.datasets).
CORE = {"mspa_tasks", "artifacts", "champion", "config", "datasets", "days", "encoder_lineage",
        "forward_day", "llm", "markdown", "model_store", "models", "progress", "publish",
        "quality", "registry", "run", "sampling", "scoring", "summaries", "text", "vector_store",
        "vocab", "warehouse"}
STAGES = {"ingest", "kuailive", "world", "compose", "vectors", "align", "replay"}
TOP = {"cli", "__main__"}
LAYER = {**dict.fromkeys(CORE, 0), **dict.fromkeys(STAGES, 1), **dict.fromkeys(TOP, 2)}


def _unit(module: str) -> str:
    """``compose`` for ``mspa_tasks.compose.shards``, ``days`` for ``mspa_tasks.days``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph() -> set[tuple[str, str]]:
    """``(importer, imported)`` units of the library, imports inside functions included."""
    edges = set()
    for module, path in MODULES.items():
        if not module.startswith("mspa_tasks"):
            continue
        for target, names in _imports(ast.parse(path.read_text())):
            for dep in ({_resolve(target, n) for n in names} or {target}):
                if dep.startswith("mspa_tasks") and _unit(dep) != _unit(module):
                    edges.add((_unit(module), _unit(dep)))
    return edges


def layer_violations(edges: set[tuple[str, str]]) -> list[str]:
    """Every edge against the order: up a layer, or sideways between two stages."""
    out = []
    for src, dst in sorted(edges):
        if src not in LAYER or dst not in LAYER:
            out.append(f"{src} -> {dst}: a package with no layer (add it to CORE/STAGES/TOP)")
        elif LAYER[dst] > LAYER[src]:
            out.append(f"{src} -> {dst}: imports a layer above its own")
        elif src in STAGES and dst in STAGES:
            out.append(f"{src} -> {dst}: a stage imports another stage (read its output "
                       "through the catalog, or move the shared piece into the core)")
    return out


def test_every_import_follows_the_layers():
    assert layer_violations(package_graph()) == []


@pytest.mark.parametrize(("edge", "message"), [
    (("days", "replay"), "imports a layer above its own"),
    (("replay", "vectors"), "a stage imports another stage"),
    (("scoring", "cli"), "imports a layer above its own"),
])
def test_the_layer_check_catches_an_injected_back_edge(edge, message):
    violations = layer_violations(package_graph() | {edge})
    assert len(violations) == 1 and message in violations[0]


def test_the_library_knows_nothing_of_airflow():
    found = [f"{path.relative_to(REPO)}: {target}" for module, path in MODULES.items()
             if module.startswith("mspa_tasks")
             for target, _ in _imports(ast.parse(path.read_text()))
             if target.split(".")[0] in ("airflow", "mspa_airflow")]
    assert found == []


def test_the_architecture_doc_lists_the_layers_the_test_holds():
    doc = (REPO / "docs" / "architecture.md").read_text()
    block = doc.split("<!-- layers:begin -->\n", 1)[1].split("\n<!-- layers:end -->", 1)[0]
    rows = {line.split("|")[1].strip(): set(line.split("|")[2].replace("`", "").split())
            for line in block.splitlines()[2:]}
    assert rows == {"core": CORE, "stages": STAGES, "entry points": TOP}


def test_every_path_the_build_names_exists():
    """A moved test file or script must not leave the Makefile, CI or README pointing at
    nothing (CI ran ``make test-openai`` on a path that a move had emptied)."""
    sources = [REPO / "Makefile", REPO / ".ci" / "run", *REPO.glob("*.md"),
               *(REPO / "docs").glob("*.md")]
    pattern = re.compile(r"(?<![\w/.])((?:tests|bench|scripts|dags|mspa_tasks|plugins)/[\w./-]+\.(?:py|toml|sh|sql))")
    missing = {(src.name, m) for src in sources for m in pattern.findall(src.read_text())
               if not (REPO / m).exists()}
    assert not missing, sorted(missing)
