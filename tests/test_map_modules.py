"""The map's script as native ES modules served as they are (no bundler): the page loads one entry module, every
import resolves to a module that exports the name, no import cycle, no module too long to read at once, every
module reachable from the entry, and window.gridgov set in one place only, the façade for the browser tests.

Read from the files, without a browser: a broken import would otherwise show only as a blank map.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webmap import STATIC_DIR, TEMPLATES_DIR

MODULES = STATIC_DIR / "map"
ENTRY = MODULES / "main.js"
MAX_LINES = 300

IMPORT = re.compile(r"^import\s*\{([^}]*)\}\s*from\s*'([^']+)';", re.M)
EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function|const|let|class)\s+([\w$]+)", re.M)


def modules() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in sorted(MODULES.rglob("*.js"))}


def imports_of(path: Path, text: str) -> list[tuple[Path, list[str]]]:
    found = []
    for names, source in IMPORT.findall(text):
        assert source.startswith("./") or source.startswith("../"), f"{path.name}: bare import {source}"
        target = (path.parent / source).resolve()
        found.append((target, [name.split(" as ")[0].strip() for name in names.split(",") if name.strip()]))
    return found


def test_the_page_loads_the_entry_module_after_leaflet():
    page = (TEMPLATES_DIR / "map.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>", page)
    assert scripts[-1].split() == ['type="module"', 'src="/static/map/main.js"']
    # Leaflet and its plugins stay classic scripts before it, exposing L
    assert all("/static/vendor/" in attrs and "module" not in attrs for attrs in scripts[:-1])
    assert not (STATIC_DIR / "map.js").exists()


def test_every_import_resolves_to_an_exported_name():
    texts = modules()
    exported = {path.resolve(): set(EXPORT.findall(text)) for path, text in texts.items()}
    assert ENTRY.resolve() in exported
    for path, text in texts.items():
        assert not re.search(r"^\s*(require\(|import\s+\*|import\s+\w+\s+from)", text, re.M), path.name
        for target, names in imports_of(path, text):
            assert target in exported, f"{path.relative_to(MODULES)} imports a missing module {target.name}"
            missing = set(names) - exported[target]
            assert not missing, f"{path.relative_to(MODULES)} imports {missing} that {target.name} does not export"


def test_no_import_cycle_and_every_module_reachable_from_the_entry():
    texts = modules()
    graph = {path.resolve(): [target for target, _ in imports_of(path, text)] for path, text in texts.items()}
    state: dict[Path, str] = {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = "open"
        for target in graph[node]:
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target] if target in trail else [node, target]
                pytest.fail("import cycle: " + " -> ".join(p.relative_to(MODULES.resolve()).as_posix() for p in cycle))
            if target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    visit(ENTRY.resolve(), [ENTRY.resolve()])
    unreachable = sorted(p.relative_to(MODULES.resolve()).as_posix() for p in graph if p not in state)
    assert unreachable == []


def test_modules_are_short_and_the_facade_is_the_only_global():
    texts = modules()
    assert len(texts) > 10
    too_long = {path.relative_to(MODULES).as_posix(): text.count("\n") for path, text in texts.items()
                if text.count("\n") > MAX_LINES}
    assert too_long == {}
    setters = [path.name for path, text in texts.items() if re.search(r"window\.gridgov\s*=", text)]
    assert setters == ["facade.js"]
    readers = [path.name for path, text in texts.items() if "window.gridgov" in text and path.name != "facade.js"]
    assert readers == []
