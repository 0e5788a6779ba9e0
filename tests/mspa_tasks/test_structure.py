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
        "forward_day", "live", "llm", "markdown", "model_store", "models", "progress", "publish",
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


# Where the behaviour of a module without a same-named test file is specified: a name the
# module provides (or its command), the test file that exercises it, and what it holds there.
# A new module gets its own test_<name>.py or an entry here.
SPECIFIED_IN = {
    "mspa_tasks.champion": (
        "base_version", "mspa_tasks/test_run.py",
        "the run object resolves the serving recommender and encoder"),
    "mspa_tasks.compose.batch_io": (
        "batch_prefix", "mspa_tasks/compose/test_batch.py",
        "batch requests, results and their resume"),
    "mspa_tasks.compose.batch_pod": (
        "mspa_tasks.compose.batch_pod", "plugins/test_pods.py",
        "the batch pod's spec"),
    "mspa_tasks.compose.generate": (
        "compose_texts", "mspa_tasks/llm/test_hf.py",
        "generation through each backend (also test_keywords.py, test_openai_server.py)"),
    "mspa_tasks.compose.outputs": (
        "publish_texts", "mspa_tasks/compose/test_run.py",
        "publishing the shards' texts, refused when a shard is missing"),
    "mspa_tasks.compose.shards": (
        "compose_shard", "mspa_tasks/compose/test_run.py",
        "planning and composing shards (and test_guards.py: resume, bad rows)"),
    "mspa_tasks.days": (
        "window_for", "mspa_tasks/test_ingest.py",
        "day windows (and the module's doctests)"),
    "mspa_tasks.forward_day": (
        "model_day", "mspa_tasks/replay/test_replay.py",
        "the forward day loaded once and shared (and vectors/test_alignment.py)"),
    "mspa_tasks.llm.answers": (
        "parse_recommended", "mspa_tasks/align/test_rewards.py",
        "parsing answers and labels (and align/test_examples.py)"),
    "mspa_tasks.llm.content": (
        "load_author_content", "mspa_tasks/align/test_examples.py",
        "what the prompt shows"),
    "mspa_tasks.llm.engine": (
        "load_backend", "mspa_tasks/llm/test_keywords.py",
        "the backend factory"),
    "mspa_tasks.llm.openai_backend": (
        "OpenAIBackend", "mspa_tasks/llm/test_openai_server.py",
        "against a real OpenAI-compatible server"),
    "mspa_tasks.llm.requests": (
        "Request", "mspa_tasks/llm/test_hf.py",
        "request building per backend"),
    "mspa_tasks.llm.validate": (
        "has_structure", "mspa_tasks/llm/test_hf.py",
        "an answer's sections checked (and test_keywords.py)"),
    "mspa_tasks.model_store": (
        "model_prefix", "mspa_tasks/test_registry.py",
        "model resolution and upload (and align/test_train.py)"),
    "mspa_tasks.publish": (
        "publish_partition", "mspa_tasks/test_datasets.py",
        "atomic partitions (and test_artifacts.py, test_faults.py)"),
    "mspa_tasks.replay.ann": (
        "replay_ann", "mspa_tasks/replay/test_replay.py",
        "ANN parity"),
    "mspa_tasks.replay.offline": (
        "replay_offline", "mspa_tasks/replay/test_replay.py",
        "the offline metrics"),
    "mspa_tasks.replay.parts": (
        "write_part", "mspa_tasks/replay/test_replay.py",
        "each part's rows"),
    "mspa_tasks.replay.render": (
        "segments_markdown", "mspa_tasks/replay/test_replay.py",
        "the report's tables (and plugins/test_reports_ui.py: the report as shown)"),
    "mspa_tasks.replay.results": (
        "publish_report", "mspa_tasks/replay/test_report_guards.py",
        "merging parts into the report"),
    "mspa_tasks.replay.rerank": (
        "rerank_part", "mspa_tasks/replay/test_replay.py",
        "the two-stage rows: the champion reranks MSPA's shortlist (and the module's doctests)"),
    "mspa_tasks.replay.u2a": (
        "replay_u2a", "mspa_tasks/replay/test_replay.py",
        "Acc@m of the champion and the baselines"),
    "mspa_tasks.summaries": (
        "show-manifest", "mspa_tasks/test_cli.py",
        "show-manifest"),
    "mspa_tasks.vector_store": (
        "milvus_client", "mspa_tasks/vectors/test_milvus.py",
        "milvus-lite and a Milvus server (and vectors/test_faults.py)"),
    "mspa_tasks.vectors.build": (
        "build_collection", "mspa_tasks/vectors/test_milvus.py",
        "building a collection"),
    "mspa_tasks.vectors.gate": (
        "validate_collection", "mspa_tasks/vectors/test_milvus.py",
        "the collection's gate"),
    "mspa_tasks.vectors.lifecycle": (
        "publish_collection", "mspa_tasks/vectors/test_milvus.py",
        "publish, rollback, retention (and dags/test_mspa_vectors_rollback.py)"),
    "mspa_tasks.warehouse": (
        "make_engine", "mspa_tasks/test_bad_input.py",
        "SQLite and PostgreSQL (and test_guards.py, plugins/test_secrets.py)"),
    "mspa_tasks.world.calibration": (
        "out_of_band", "mspa_tasks/test_world.py",
        "the calibrated marginals"),
    "mspa_tasks.world.generate": (
        "generate_world", "mspa_tasks/test_world.py",
        "the generated world"),
    "mspa_airflow.docs": (
        "DagDocs", "dags/test_dag_integrity.py",
        "every task's doc"),
    "mspa_airflow.params": (
        "param_overrides", "mspa_tasks/test_config.py",
        "Params from the settings' fields"),
}


def test_every_module_has_its_test_file_or_says_where_it_is_specified():
    tests = REPO / "tests"
    named = {p.stem.removeprefix("test_") for p in tests.rglob("test_*.py")}
    modules = {m for m, path in MODULES.items()
               if path.name not in ("__init__.py", "__main__.py")}
    unspecified = sorted(m for m in modules
                         if m.rpartition(".")[2] not in named and m not in SPECIFIED_IN)
    assert unspecified == [], "add tests/.../test_<name>.py or an entry in SPECIFIED_IN"
    stale = sorted(m for m in SPECIFIED_IN if m not in modules or m.rpartition(".")[2] in named)
    assert stale == [], "these have a same-named test file now (or are gone): drop the entry"
    for module, (marker, test_file, _) in SPECIFIED_IN.items():
        assert marker in (tests / test_file).read_text(), (module, marker, test_file)
        assert marker.startswith("show-") or marker == module or re.search(
            rf"^(def|class) {marker}\b|^{marker} = ", MODULES[module].read_text(), re.M), \
            (module, marker)
