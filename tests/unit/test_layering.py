"""The layout's promises, read from the code's own imports: nothing shipped
imports what only develops, the shared library imports no process, no
process imports another, and no module imports itself round a circle.

Layers, bottom up: holdfast (the shared library and the generated
contracts); each service, and the gateway; devtools (develops only), which
may use any of them. Tests and benchmarks are not checked: they may import
anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("holdfast", "services", "gateway", "devtools")


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_of(path): path
        for top in CHECKED
        for path in (ROOT / top).rglob("*.py")
        if "contracts" not in path.parts
    }


def _imports(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Every project module `module` imports, at any depth in the file.
    `from package import module` imports that module (the package's
    __init__ is not the point of it); `from module import name`, the module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            if any(name in modules for name in submodules):
                yield from (name for name in submodules if name in modules)
            else:
                yield base


def _layer(module: str) -> str:
    """holdfast, devtools, gateway, or services.<name>."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" else parts[0]


ALLOWED = {
    "holdfast": {"holdfast"},
    "gateway": {"holdfast", "gateway"},
    "devtools": {"holdfast", "gateway", "devtools", "services"},
}


def _allowed(importer: str, imported: str) -> bool:
    if importer.startswith("services."):
        return imported in ("holdfast", importer)
    if importer == "devtools":
        return True
    return imported in ALLOWED[importer]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        module: {
            name for name in _imports(module, path, modules) if name in modules and name != module
        }
        for module, path in modules.items()
    }


def test_imports_run_only_downward() -> None:
    wrong = sorted(
        f"{importer} imports {imported}"
        for importer, imported_modules in _graph().items()
        for imported in imported_modules
        if not _allowed(_layer(importer), _layer(imported))
    )
    assert wrong == []


def test_there_is_no_import_circle() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert circles == []


def test_the_checker_sees_what_it_should() -> None:
    """A rule that reads nothing would pass: check it reads real imports."""
    graph = _graph()
    assert "holdfast.platform.errors" in graph["holdfast.platform.db"]
    assert "holdfast.tenancy.keys" in graph["gateway.auth"]
    assert not _allowed("holdfast", "services.booking")
    assert not _allowed("services.webhooks", "services.booking")
    assert not _allowed("gateway", "devtools")
