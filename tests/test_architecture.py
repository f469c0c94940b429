"""The package's structure as a rule that holds from now on.

Dependencies point one way: the neutral modules below every role, then Walrus and the
cluster controller, the storage controller above them, the cloud controller above all three,
and the adapters that face users (console, CLI, IAM endpoint, server) on top. A module may
import its own layer or any layer below; an import upwards is a back-edge and fails here,
whether it is written at the top of a module or hidden inside a function. No module imports
another module's private (``_``-prefixed) names either: what one module offers another is its
public surface.

The walk reads the source with :mod:`ast`, so it sees every import statement, executed or
not.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "eucalite"

#: Lowest first. A module belongs to the first entry that names it or a package above it.
LAYERS: list[tuple[str, ...]] = [
    # neutral: no role, no Flask app; everything may use these
    ("eucalite.errors", "eucalite.ids", "eucalite.integers", "eucalite.wildcards",
     "eucalite.statemachine",
     "eucalite.xmlutil", "eucalite.requesttime", "eucalite.datadir", "eucalite.config",
     "eucalite.credentials", "eucalite.db", "eucalite.duty", "eucalite.utctime",
     "eucalite.fsutil", "eucalite.ceph", "eucalite.botoclients", "eucalite.query", "eucalite.paging",
     "eucalite.sigv4",
     "eucalite.httpserver", "eucalite.policy"),
    # who is asking: accounts, signatures, and the tags every EC2 resource family shares
    ("eucalite.accounts", "eucalite.identity", "eucalite.auth", "eucalite.tags", "eucalite.api",
     "eucalite.quotas",
     "eucalite.access", "eucalite.sessions",
     # the model-driven protocols (JSON, CBOR, Query) of the services added since
     "eucalite.wire"),
    # roles that need no other role: Walrus and the cluster controller with its nodes
    ("eucalite.s3", "eucalite.cluster"),
    # the storage controller keeps snapshots in Walrus and attaches through the cluster
    ("eucalite.ebs",),
    # the cloud controller ties images, instances, volumes and nodes together
    ("eucalite.compute",),
    # cloud-bursting places the cloud controller's launches on remote clouds and keeps
    # their rows (the cloud controller reaches it only through the object it is given)
    ("eucalite.burst",),
    # monitoring watches every role and acts through the cloud controller (alarm actions)
    ("eucalite.cloudwatch",),
    # Auto Scaling launches through the cloud controller, scaled by CloudWatch's alarms
    ("eucalite.autoscaling",),
    # what faces users and wires the roles together
    ("eucalite.iam", "eucalite.web", "eucalite.cli", "eucalite.services", "eucalite.server",
     "eucalite.sts", "eucalite.models", "eucalite.migrations", "eucalite"),
]


def layer_of(module: str) -> int:
    for index, names in enumerate(LAYERS):
        for name in names:
            if name == "eucalite" and module != "eucalite":
                continue
            if module == name or module.startswith(name + "."):
                return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").exists() or \
        (root / relative / "__init__.py").exists()


@dataclass(frozen=True)
class Import:
    source: str           # importing module
    target: str           # imported module
    names: tuple[str, ...]  # names taken from it (``from target import names``)
    line: int


def imports_of(path: Path) -> list[Import]:
    """Every eucalite import in *path*, at any depth, resolved to the module it loads."""
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(source, alias.name, (), node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "eucalite"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "eucalite":
                continue
            taken = []
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if is_module(submodule):        # ``from . import x``: x is a module
                    found.append(Import(source, submodule, (), node.lineno))
                else:
                    taken.append(alias.name)
            if taken:
                found.append(Import(source, module, tuple(taken), node.lineno))
    return found


def all_imports() -> list[Import]:
    return [found for path in sorted(PACKAGE.rglob("*.py")) for found in imports_of(path)]


def back_edges(imports: list[Import]) -> list[str]:
    return [f"{i.source}:{i.line} imports {i.target} (layer {layer_of(i.target)} above "
            f"{layer_of(i.source)})"
            for i in imports if layer_of(i.target) > layer_of(i.source)]


def private_imports(imports: list[Import]) -> list[str]:
    return [f"{i.source}:{i.line} takes {name} from {i.target}"
            for i in imports for name in i.names
            if name.startswith("_") and not name.startswith("__") and i.target != i.source]


def cycles(imports: list[Import]) -> list[list[str]]:
    """Groups of modules that reach each other through imports (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.target != found.source:
            graph.setdefault(found.source, set()).add(found.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found_cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                found_cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found_cycles


def test_every_module_is_in_a_layer():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_no_import_points_up_a_layer():
    assert back_edges(all_imports()) == []


def test_no_module_takes_another_modules_private_names():
    assert private_imports(all_imports()) == []


def test_no_modules_import_each_other():
    """A registry (routes, actions) is imported by the modules that register into it, and
    the package that serves them imports those modules: never the other way round too."""
    assert cycles(all_imports()) == []


def test_services_do_not_import_their_adapters():
    """The cloud controller's modules are what the EC2 adapter (``compute.ec2``) calls:
    none of them may import the adapter (its Query parsing and filter matching)."""
    assert [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
            if i.source.startswith("eucalite.compute.") and
            not i.source.startswith("eucalite.compute.ec2") and
            i.target.startswith("eucalite.compute.ec2")] == []


# --- the walk itself must see what it claims to see ------------------------------------

@pytest.fixture
def sample(tmp_path, monkeypatch):
    """A throwaway copy of the layer layout: eucalite/{db,s3,compute}/..."""
    root = tmp_path / "eucalite"
    for package in ("", "s3", "compute"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "db.py").write_text("")
    monkeypatch.setitem(globals(), "PACKAGE", root)
    return root


def test_a_deferred_upward_import_is_a_back_edge(sample):
    (sample / "s3" / "objects.py").write_text(
        "from ..db import x\n\ndef f():\n    from ..compute import models\n")
    (sample / "compute" / "models.py").write_text("")
    edges = back_edges(imports_of(sample / "s3" / "objects.py"))
    assert edges == ["eucalite.s3.objects:4 imports eucalite.compute.models (layer 4 above 2)"]


def test_a_downward_import_is_not_a_back_edge(sample):
    (sample / "compute" / "service.py").write_text("from ..s3 import objects\nimport eucalite.db\n")
    (sample / "s3" / "objects.py").write_text("")
    assert back_edges(imports_of(sample / "compute" / "service.py")) == []


def test_a_private_name_from_another_module_is_reported(sample):
    (sample / "compute" / "service.py").write_text(
        "from ..s3.objects import _helper, public\nfrom .models import __all__\n")
    (sample / "s3" / "objects.py").write_text("")
    assert private_imports(imports_of(sample / "compute" / "service.py")) == [
        "eucalite.compute.service:1 takes _helper from eucalite.s3.objects"]


def test_modules_that_import_each_other_are_a_cycle(sample):
    (sample / "s3" / "rest.py").write_text("def f():\n    from . import rest_objects\n")
    (sample / "s3" / "rest_objects.py").write_text("from .rest import route\n")
    (sample / "s3" / "store.py").write_text("from . import rest\n")
    imports = [found for path in sorted(sample.rglob("*.py")) for found in imports_of(path)]
    assert cycles(imports) == [["eucalite.s3.rest", "eucalite.s3.rest_objects"]]
