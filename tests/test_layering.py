"""Imports only point down: the layer order of stevq's package docstring, held module by module.

Every module's imports are read from its source (``ast``, imports inside functions included) and
resolved to stevq modules. The test fails on an import of a higher layer than the importer's and
on any circle of imports between modules, and checks that ``stevq.autodiff`` is the only module
that imports autograd's internals (``autograd.tracer``, ``autograd.core``, ``autograd.util``).
"""

import ast
import re
from pathlib import Path

import pytest

import stevq

PACKAGE = Path(stevq.__file__).resolve().parent
INTERNALS = ("autograd.tracer", "autograd.core", "autograd.util")


def declared_layers():
    """{top-level name: layer number}, parsed from the numbered list in stevq's docstring."""
    layers = {}
    for number, names in re.findall(r"^\s*(\d+)\.\s+(.+?)(?:[ \t]{2,}.*)?$", stevq.__doc__, re.M):
        for name in names.split(","):
            layers[name.strip()] = int(number)
    return layers


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name, path, known, source=None):
    """(stevq modules, other modules) that the module ``name`` at ``path`` imports anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    ours, others = set(), set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            # ``from . import ops`` imports the module stevq.ops; ``from .backend import xp`` a name in one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            (ours if target == "stevq" or target.startswith("stevq.") else others).add(target)
    return ours, others


def graph():
    """{module: set of stevq modules it imports}, each import also counting the packages above the
    imported module that the importer is not inside (importing stevq.vq.core runs stevq/vq/__init__)."""
    known = modules()
    edges = {}
    for name, path in known.items():
        targets = set()
        for target in imported(name, path, known)[0]:
            while target not in known:  # an attribute of a module: the module
                target = target.rpartition(".")[0]
            parts = target.split(".")
            for depth in range(2, len(parts) + 1):
                ancestor = ".".join(parts[:depth])
                if ancestor in known and not (name == ancestor or name.startswith(ancestor + ".")):
                    targets.add(ancestor)
        edges[name] = targets - {name}
    return edges


def layer_of(name, layers):
    if name == "stevq":
        return max(layers.values()) + 1  # the package's facade
    top = name.split(".")[1]
    assert top in layers, f"{name}: its top-level name {top!r} is missing from the layers of stevq's docstring"
    return layers[top]


def test_the_docstring_declares_the_layers_of_every_module():
    layers = declared_layers()
    assert layers["tree"] < layers["autodiff"] < layers["backend"] < layers["validate"] < layers["ops"]
    assert (
        layers["ops"] < layers["vq"] < layers["metrics"] < layers["theory"] < layers["experiments"] < layers["__main__"]
    )
    for name in modules():
        layer_of(name, layers)


def test_no_import_points_up():
    layers = declared_layers()
    upward = sorted(
        f"{name} (layer {layer_of(name, layers)}) imports {target} (layer {layer_of(target, layers)})"
        for name, targets in graph().items()
        for target in targets
        if layer_of(target, layers) > layer_of(name, layers)
    )
    assert not upward, "\n".join(upward)


def test_the_command_line_is_imported_by_no_library_module():
    importers = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in targets
        if target.split(".")[1:2] == ["__main__"] and name.split(".")[1:2] != target.split(".")[1:2]
    )
    assert not importers, "\n".join(importers)


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_cycles_finds_a_circle_and_no_false_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle_between_modules():
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_only_autodiff_imports_autograds_internals():
    known = modules()
    users = sorted(
        name
        for name, path in known.items()
        if any(other.startswith(INTERNALS) for other in imported(name, path, known)[1])
    )
    assert users == ["stevq.autodiff"]


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from ..backend import xp", {"stevq.backend"}),
        ("from .. import ops, validate", {"stevq.ops", "stevq.validate"}),
        ("from . import core", {"stevq.vq.core"}),
        ("def f():\n    import stevq.vq.core as c\n    from stevq.vq.core import nearest_code", {"stevq.vq.core"}),
    ],
)
def test_imports_are_resolved_to_modules(source, expected):
    """The parser on a made-up module stevq/vq/probe.py: relative, absolute and function-level imports."""
    assert imported("stevq.vq.probe", PACKAGE / "vq" / "probe.py", modules(), source)[0] == expected
