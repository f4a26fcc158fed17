"""The modules of alerts/ import each other without a circle: each one can be read, changed and
tested on top of the ones it imports. Every import counts, at the top of a module and inside a
function alike (an import hidden in a function still ties the two modules together)."""

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = "alerts"


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name, not __init__)."""
    names: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `module` imports anywhere in its body: `import a.b` names a.b,
    `from a import b` names a.b when that is a module, else a."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, path.name == "__init__.py")
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if target in known:
                    found.add(target)
                elif source in known:
                    found.add(source)
    found.discard(module)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_names(root, package)
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of modules (Tarjan), as the path that closes it:
    [a, b, a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_closing_path(graph, group) for group in groups]


def _closing_path(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, within the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no circle through {start} in {sorted(group)}")


def test_the_modules_of_alerts_import_each_other_without_a_circle():
    graph = import_graph(ROOT, PACKAGE)
    assert "alerts.delivery" in graph and "alerts.senders.channels" in graph  # the walk saw the package
    found = [" -> ".join(path) for path in circles(graph)]
    assert not found, "import circles in alerts/: " + "; ".join(found)


def test_a_circle_through_an_import_inside_a_function_is_found_and_named(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "loop.py").write_text("def run():\n    from pkg.lanes import drain\n    return drain\n")
    (package / "lanes.py").write_text("from pkg import shared\nfrom pkg.loop import run\n")
    (package / "shared.py").write_text("import pkg.sub.leaf\n")
    (package / "sub" / "leaf.py").write_text("from ..shared import x\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.loop"] == {"pkg.lanes"}
    assert graph["pkg.lanes"] == {"pkg.shared", "pkg.loop"}
    assert graph["pkg.sub.leaf"] == {"pkg.shared"}
    assert sorted(circles(graph)) == [["pkg.lanes", "pkg.loop", "pkg.lanes"],
                                      ["pkg.shared", "pkg.sub.leaf", "pkg.shared"]]


def test_a_tree_without_circles_has_none(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "common.py").write_text("import json\n")
    (package / "loop.py").write_text("from pkg.common import x\n\ndef run():\n    from pkg import lanes\n")
    (package / "lanes.py").write_text("from pkg.common import x\n")
    assert circles(import_graph(tmp_path, "pkg")) == []
