"""The import graph of `gis/` and `api/`: no cycles, and the core never imports the layers above it.

Every import statement counts, wherever it stands: at module level, under `if TYPE_CHECKING:`, or inside a
function (a function-local import only postpones a cycle, it does not remove it), and so do
`importlib.import_module("...")` calls with a literal name. `from package import name` is an edge to the
submodule `package.name` when there is one, otherwise to `package`. Importing a submodule also runs its
packages' `__init__`, but that is not counted as an edge (a package re-exporting its own submodules is fine).
The graph is read from the source with `ast`; nothing is imported.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gis", "api")
"""The packages whose modules form the graph."""
ABOVE_THE_CORE = ("api", "webmap", "cli", "fixtures", "benchmarks", "tests")
"""What `gis` never imports: it is the core that everything else builds on."""
NOT_MODULES = ("gis/db/migrations/",)
"""Alembic loads these files by path (revision files are no importable names); they are outside the graph but
still may not import anything above the core."""


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str
    """file:line of the import statement."""


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(tree: ast.AST, module: str, is_package: bool):
    """(dotted name, `from` import's names or None, line) of every import in the tree, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            yield base, [alias.name for alias in node.names], node.lineno
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            yield node.args[0].value, None, node.lineno


def build_graph(root: Path, packages=PACKAGES) -> tuple[dict[str, set[str]], list[Edge], list[Edge]]:
    """The graph {module: modules it imports} of `packages` under `root`, every edge with its place, and the
    imports of a layer above the core made by any file of `gis` (migrations included)."""
    files: dict[str, Path] = {}
    outside: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            target = outside if relative.startswith(NOT_MODULES) else files
            target[_module_name(root, path) if target is files else relative] = path

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {module: set() for module in files}
    edges: list[Edge] = []
    layering: list[Edge] = []
    for module, path in [*files.items(), *outside.items()]:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        in_graph = module in files
        for base, names, line in _imported_names(tree, module if in_graph else "", is_package):
            where = f"{path.relative_to(root).as_posix()}:{line}"
            wanted = [f"{base}.{name}" if f"{base}.{name}" in files else base for name in names] if names else [base]
            for name in wanted:
                if path.relative_to(root).parts[0] == "gis":
                    top = name.partition(".")[0]
                    if top in ABOVE_THE_CORE:
                        layering.append(Edge(module, name, where))
                if not in_graph:
                    continue
                target = resolve(name)
                if target is not None and target != module:
                    graph[module].add(target)
                    edges.append(Edge(module, target, where))
    return graph, edges, layering


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds at least one cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative so deep import chains cannot exhaust the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def _describe(component: list[str], edges: list[Edge]) -> str:
    members = set(component)
    lines = [f"  {e.source} -> {e.target}  ({e.where})" for e in edges
             if e.source in members and e.target in members]
    return "cycle among " + ", ".join(component) + ":\n" + "\n".join(sorted(set(lines)))


def test_no_import_cycles_in_gis_and_api():
    graph, edges, _ = build_graph(ROOT)
    assert len(graph) > 50, f"only {len(graph)} modules found: the graph is not reading the project"
    found = cycles(graph)
    assert not found, "import cycles (move what both sides need into a module of its own):\n" + "\n".join(
        _describe(component, edges) for component in found)


def test_gis_imports_nothing_above_the_core():
    _, _, layering = build_graph(ROOT)
    assert not layering, "gis must not import " + "/".join(ABOVE_THE_CORE) + ":\n" + "\n".join(
        f"  {e.where}: {e.source or 'migration'} imports {e.target}" for e in layering)


# --- the checks themselves fail where they should --------------------------------------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


def test_a_function_local_import_closing_a_cycle_is_found(tmp_path):
    root = _tree(tmp_path, {
        "gis/__init__.py": "",
        "gis/tickets/__init__.py": "",
        "gis/tickets/workflow.py": "def transition():\n    from gis.tickets.assignment import check\n",
        "gis/tickets/assignment.py": "from gis.tickets.workflow import transition\n",
        "gis/plain.py": "from gis.tickets import assignment\n",
        "api/__init__.py": "",
    })
    graph, edges, _ = build_graph(root)
    assert graph["gis.plain"] == {"gis.tickets.assignment"}
    assert cycles(graph) == [["gis.tickets.assignment", "gis.tickets.workflow"]]
    assert "gis/tickets/workflow.py:2" in _describe(cycles(graph)[0], edges)


def test_relative_type_checking_and_dynamic_imports_count(tmp_path):
    root = _tree(tmp_path, {
        "gis/__init__.py": "",
        "gis/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n",
        "gis/b.py": "import importlib\nX = importlib.import_module('gis.c')\n",
        "gis/c.py": "from .a import thing\n",
        "api/__init__.py": "",
    })
    graph, _, _ = build_graph(root)
    assert cycles(graph) == [["gis.a", "gis.b", "gis.c"]]


def test_the_core_importing_the_api_or_the_map_is_found(tmp_path):
    root = _tree(tmp_path, {
        "gis/__init__.py": "",
        "gis/serve/tiles.py": "def render():\n    from api.errors import problem\n",
        "gis/pages.py": "import webmap\n",
        "gis/db/migrations/versions/0009_x.py": "from fixtures import loader\n",
        "api/__init__.py": "from gis import tiles\n",
    })
    _, _, layering = build_graph(root)
    assert sorted((e.target, e.where) for e in layering) == [
        ("api.errors", "gis/serve/tiles.py:2"), ("fixtures", "gis/db/migrations/versions/0009_x.py:1"),
        ("webmap", "gis/pages.py:1")]
