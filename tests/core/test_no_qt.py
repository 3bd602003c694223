"""The core and the CLI must stay free of Qt: checked in the source and in a fresh interpreter.

In the CLI, only the GUI launcher and the self-test's Qt check may import Qt (or the GUI).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from dataset_helpers import write_image

import cxr_desktop

PACKAGE = Path(cxr_desktop.__file__).parent
CORE, CLI = PACKAGE / "core", PACKAGE / "cli"
FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6")
GUI = "cxr_desktop.gui"
#: (file in the package, function) that import Qt on purpose: they start the GUI or test it.
ALLOWED = {("cli/__init__.py", "main"), ("cli/selftest.py", "check_qt")}
IMPORT_FUNCTIONS = ("__import__", "import_module")


def _is_qt(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN or name == GUI or name.startswith(f"{GUI}.")


def _imported(node: ast.AST) -> list[str]:
    """The modules ``node`` imports: import statements, and ``__import__("x")`` or
    ``importlib.import_module("x")`` with the name written as a string."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else ""
        first = node.args[0]
        if name in IMPORT_FUNCTIONS and isinstance(first, ast.Constant) \
                and isinstance(first.value, str):
            return [first.value]
    return []


def qt_imports(source: str, filename: str) -> list[tuple[str, str, int]]:
    """``(function, module, line)`` of each Qt import in ``source``; ``function`` is the
    dotted name of the enclosing definitions, ``""`` at module level."""
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{scope}.{child.name}" if scope else child.name
            found.extend((scope, name, child.lineno) for name in _imported(child)
                         if _is_qt(name))
            visit(child, inner)

    visit(ast.parse(source, filename=filename), "")
    return found


def test_core_and_cli_import_qt_only_in_the_allowed_functions():
    offenders, used = [], set()
    for path in sorted([*CORE.rglob("*.py"), *CLI.rglob("*.py")]):
        rel = path.relative_to(PACKAGE).as_posix()
        for function, name, line in qt_imports(path.read_text(encoding="utf-8"), str(path)):
            if (rel, function) in ALLOWED:
                used.add((rel, function))
            else:
                offenders.append(f"{rel}:{line} ({function or 'module level'}): {name}")
    assert not offenders, offenders
    assert used == ALLOWED  # an entry that imports no Qt any more leaves the list


def test_the_source_check_sees_string_imports_and_the_gui_package():
    source = (
        "import importlib\n"
        "from cxr_desktop import gui\n"
        "def version():\n"
        "    return __import__('PySide6').__version__\n"
        "class Plot:\n"
        "    def load(self):\n"
        "        importlib.import_module('pyqtgraph')\n"
        "        importlib.import_module(name)\n"
        "        from cxr_desktop.core import data\n"
    )
    assert qt_imports(source, "example.py") == [
        ("", "cxr_desktop.gui", 2), ("version", "PySide6", 4), ("Plot.load", "pyqtgraph", 7),
    ]


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_importing_the_whole_core_and_cli_loads_no_qt():
    modules = sorted(
        "cxr_desktop." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts)
        for p in [*CORE.rglob("*.py"), *CLI.rglob("*.py")]
    )
    modules = [m.removesuffix(".__init__") for m in modules]
    result = _run_python(
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_headless_command_and_the_self_test_report_load_no_qt(tmp_path):
    for i, cls in enumerate(("NORMAL", "PNEUMONIA", "NORMAL", "PNEUMONIA")):
        write_image(tmp_path / "ds" / cls / f"{i}.png", seed=i, size=(32, 32))
    result = _run_python(
        "import contextlib, io, json, sys\n"
        "from cxr_desktop.__main__ import main\n"
        "from cxr_desktop.cli.selftest import environment\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    code = main(['inspect', {str(tmp_path / 'ds')!r}, '--json'])\n"
        "env = environment('cpu')\n"
        f"qt = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}\n"
        f"            or m.startswith({GUI!r}))\n"
        "print(json.dumps({'code': code, 'classes': json.loads(out.getvalue())['classes'],\n"
        "                  'pyside6': env['pyside6'], 'qt': qt}))\n"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["code"] == 0 and report["classes"] == ["NORMAL", "PNEUMONIA"]
    assert report["pyside6"].startswith("6.")  # named from package metadata...
    assert report["qt"] == []  # ...without loading Qt
