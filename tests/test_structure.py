"""The packages' imports point one way (docs/packages.md): no import circle between modules, the base imports nothing
of the project above it, and each layer imports only layers below it.

Every import counts, including those inside functions, read from the source with ``ast`` (nothing is run).
"""

from __future__ import annotations

import ast
from pathlib import Path

from smartcity.settings import PROJECT_ROOT
from smartcity_ops.cli import OPTIONAL_SERVICES
from smartcity_ops.services import SERVICES

LAYERS = {
    "smartcity_ops": 3,  # the operator app: assembles everything, nothing imports it
    "smartcity_dagster": 2,  # orchestration
    "dashboard": 2,  # serving
    "spark_streaming": 1,  # components
    "simulator": 1,
    "smartcity_aws": 1,
    "smartcity": 0,  # the base
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in LAYERS for path in (PROJECT_ROOT / package).rglob("*.py")}


def imports_of(source: str, package: str, known: set[str]) -> set[str]:
    """The project modules a module's source imports (``from a import b`` names ``a.b`` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                      for a in node.names}  # fmt: skip
    return {name for name in found if name in known and name != package}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path.read_text(), name, known) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports from one package into another that is not on a lower layer."""
    package = {name: name.split(".")[0] for name in graph}
    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if package[source] != package[target] and LAYERS[package[source]] <= LAYERS[package[target]]
    )


def test_every_package_has_a_layer() -> None:
    packages = {path.parent.name for path in PROJECT_ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(LAYERS)


def test_no_module_imports_itself_back_through_others() -> None:
    assert circles(import_graph()) == []


def test_the_base_imports_nothing_of_the_project_above_it() -> None:
    graph = import_graph()
    base = {f"{source} -> {target}" for source, targets in graph.items() if source.split(".")[0] == "smartcity"
            for target in targets if target.split(".")[0] != "smartcity"}  # fmt: skip
    assert base == set()


def test_imports_point_down_the_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_the_checks_find_a_circle_and_an_upward_import() -> None:
    """The checks above pass only because the code is clean, not because they cannot fail."""
    graph = {"smartcity.a": {"smartcity.b"}, "smartcity.b": {"smartcity.a", "dashboard.c"}, "dashboard.c": set()}
    assert circles(graph) == [["smartcity.a", "smartcity.b"]]
    assert upward_imports(graph) == ["smartcity.b -> dashboard.c"]
    assert "smartcity_ops.cli" in import_graph()["smartcity_ops.__main__"], "imports are found"


def test_the_service_table_names_what_up_accepts() -> None:
    assert tuple(SERVICES) == ("kafka", *OPTIONAL_SERVICES)
    from smartcity.settings import load_settings

    settings = load_settings()
    assert [make(settings).name for make in SERVICES.values()] == list(SERVICES)
