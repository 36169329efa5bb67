"""Floors on the shape of the package (issue 13): file and function sizes, no import cycles, a torch-free config.

Module-level imports are read with ``ast`` (imports inside functions are lazy and do not count; neither do
``if TYPE_CHECKING:`` blocks). ``import a.b.c`` also imports the packages ``a`` and ``a.b`` (their ``__init__``),
and ``from a.b import c`` imports the submodule ``a.b.c`` when there is one.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kosim"
MAX_FILE_LINES = 450
MAX_FUNCTION_LINES = 100


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (not in functions or TYPE_CHECKING blocks)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    visit(block)
            elif isinstance(node, (ast.With, ast.For, ast.While)):
                visit(node.body)

    visit(tree.body)
    return found


def with_parents(target: str, importer: str) -> set[str]:
    """``target`` and the packages above it, except the importer's own packages: those are being imported already
    (an explicit ``from kosim.pkg import name`` in a module of ``kosim.pkg`` still counts, as ``target``)."""
    parts = target.split(".")
    own = {".".join(importer.split(".")[:i]) for i in range(1, importer.count(".") + 1)}
    names = {".".join(parts[:i]) for i in range(1, len(parts))} - own
    return {n for n in names | {target} if n in MODULES and n != importer}


def imports_of(name: str) -> set[str]:
    """The kosim modules that importing ``name`` imports directly."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in module_level_imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package(name) else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
        for target in targets:
            if target == "kosim" or target.startswith("kosim."):
                out |= with_parents(target, name)
    return out


def import_cycles() -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a sorted list."""
    graph = {name: imports_of(name) for name in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for name in graph:
        if name not in index:
            connect(name)
    return sorted(groups)


def test_no_file_is_too_long():
    lines = {
        str(p.relative_to(PACKAGE.parent)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()
    }
    assert {file: n for file, n in lines.items() if n > MAX_FILE_LINES} == {}


def test_no_function_is_too_long():
    long = {}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"] = lines
    assert long == {}


def test_no_module_level_import_cycle():
    assert import_cycles() == []


def test_the_cycle_finder_sees_a_cycle_through_a_package_init(tmp_path, monkeypatch):
    """The checker itself: a.__init__ imports a.x, which imports b, which imports a.x (and with it a.__init__)."""
    files = {
        "kosim/__init__.py": "",
        "kosim/a/__init__.py": "from kosim.a.x import f\n",
        "kosim/a/x.py": "from kosim import b\n\ndef f():\n    from kosim import c  # lazy: no edge\n",
        "kosim/b.py": "import kosim.a.x\n",
        "kosim/c.py": "from kosim.a import x\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "kosim")
    monkeypatch.setattr(
        sys.modules[__name__], "MODULES", {module_name(p): p for p in (tmp_path / "kosim").rglob("*.py")}
    )
    assert imports_of("kosim.c") == {"kosim.a", "kosim.a.x"}
    assert imports_of("kosim.a.x") == {"kosim", "kosim.b"}  # "from kosim import b" reads kosim/__init__ too
    assert import_cycles() == [["kosim.a", "kosim.a.x", "kosim.b"]]


def test_importing_kosim_config_does_not_import_torch():
    code = "import sys, kosim.config; print(sorted(m for m in ('torch', 'numpy', 'transformers') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
