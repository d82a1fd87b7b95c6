"""The package's layout is its data flow: every import goes down the stage order, and nothing cycles.

``LAYERS`` lists posedive's top-level modules and packages from the bottom (the shared layer every
stage may use) to the top (the command line). A module may import from its own package and from any
package of a lower layer, never from a higher one; and no chain of imports may lead from a module
back to itself. Every import counts: module-level, inside functions, under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import posedive

PACKAGE_ROOT = Path(posedive.__file__).resolve().parent

# Bottom to top. recipe -> plan -> conditions -> generation -> filtering -> shards -> release -> hub is
# the pipeline; the layers under it are shared by the stages, the layers over it use the pipeline.
LAYERS: tuple[tuple[str, ...], ...] = (
    # the foundation: errors, file names, on-disk formats, atomic files, typed records, parallel work
    ("__init__",),
    ("errors",),
    ("yamlfile",),
    ("paths",),
    ("formats",),
    ("files",),
    ("storage",),  # release locations: local folders and fsspec URLs
    ("schema",),
    ("provenance",),
    ("parallel",),
    ("native_output",),  # other libraries' native chatter on fd 2, filtered
    ("seed_draws",),  # numpy's seeded draws for many seeds at once
    ("geometry", "pose"),  # rotations and cameras; pose estimation
    ("body",),  # parametric body models
    ("fitting",),  # body fitting to estimated 2D poses
    ("recipe",),
    ("sources",),
    ("video",),  # people in videos: a source of crops, tracks and Market-layout folders
    ("plan",),
    ("conditions",),
    ("generation",),
    ("filtering",),
    ("shards",),
    ("release",),
    ("builder",),
    ("hub",),
    ("analysis",),  # statistics and evaluation splits of sources and releases
    ("reid",),  # Re-ID evaluation of releases
    ("commands",),
    ("cli",),
)
RANK: dict[str, int] = {name: rank for rank, names in enumerate(LAYERS) for name in names}

# Packages the layer order would let one import from the other, which meet only through a type of the
# foundation instead: video hands people to fitting as ``schema.ImageGroup``s.
INDEPENDENT: tuple[tuple[str, str], ...] = (("fitting", "video"),)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """posedive modules ``name`` imports anywhere in its source (functions and TYPE_CHECKING included)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from X import y`` imports the module X.y when there is one, else the name y of X
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import posedive.a.b`` -> the module itself
                target = target.rpartition(".")[0]
            if target.startswith("posedive"):
                found.add(target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def top_level(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_top_level_module_has_a_layer(graph):
    unplaced = sorted({top_level(module) for module in graph} - set(RANK))
    assert not unplaced, f"add these to LAYERS in {Path(__file__).name}: {unplaced}"


def test_imports_follow_the_stage_order(graph):
    upward = []
    for module, targets in sorted(graph.items()):
        own = top_level(module)
        for target in sorted(targets):
            other = top_level(target)
            if other != own and RANK.get(other, -1) >= RANK.get(own, -1):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that go up (or sideways) the layer order:\n  " + "\n  ".join(upward)


def test_independent_packages_never_import_each_other(graph):
    crossing = [f"{module} -> {target}" for module, targets in sorted(graph.items()) for target in sorted(targets)
                for pair in INDEPENDENT if {top_level(module), top_level(target)} == set(pair)]
    assert not crossing, "imports between packages that meet only through the foundation:\n  " + "\n  ".join(crossing)


def test_no_import_cycles(graph):
    found = cycles(graph)
    assert not found, "import cycles:\n  " + "\n  ".join(" <-> ".join(cycle) for cycle in found)


def test_the_checks_see_function_level_imports_and_cycles(tmp_path):
    """The walker counts imports inside functions, and the cycle finder finds a two-module cycle."""
    source = tmp_path / "sample.py"
    source.write_text("def late():\n    from posedive.recipe import Recipe\n    import posedive.plan\n")
    modules = all_modules()
    assert imported_modules("posedive.sample", source, modules) == {"posedive.recipe", "posedive.plan"}
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
