"""The headless command line: ``cxr-desktop SUBCOMMAND ...``; no subcommand starts the GUI.

Each subcommand lives in its own module of this package with ``register(subparsers)``, which
adds a parser whose ``func(args) -> int`` runs it; every such module is found here, so adding
a command is adding a module. Nothing here imports Qt, so ``--help`` and ``--version`` work
without a display.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from pathlib import Path

from cxr_desktop import __version__
from cxr_desktop.core.errors import CxrError


def command_modules() -> list[str]:
    """Names of the modules of this package that register subcommands."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__)
                  if not info.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxr-desktop",
        description="Offline chest X-ray classifier workbench. "
        "Run without a subcommand to start the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"cxr-desktop {__version__}")
    parser.add_argument("--demo", action="store_true",
                        help="start the app on the built-in demo dataset (made on first use)")
    parser.add_argument("--open", metavar="FILE", dest="open_paths", action="append",
                        default=[], help="open an image in the Viewer at start (repeatable)")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name in command_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    parser.set_defaults(command_names=frozenset(subparsers.choices))
    return parser


def _files_to_open(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Existing files given without a subcommand (a desktop entry's ``%F``, a double-click)."""
    commands = parser.get_default("command_names")
    if not argv or argv[0] in commands or any(a.startswith("-") for a in argv):
        return []
    return argv if all(Path(a).exists() for a in argv) else []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    files = _files_to_open(argv, parser)
    args = parser.parse_args([] if files else argv)
    args.open_paths += files
    if args.command is None:
        from cxr_desktop.gui.app import run_gui

        return run_gui(demo=args.demo, open_paths=args.open_paths)
    try:
        return int(args.func(args) or 0)
    except CxrError as exc:
        print(f"cxr-desktop: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cxr-desktop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cxr-desktop info ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
