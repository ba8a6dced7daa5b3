"""Subcommands of ``sigmasight`` that live in their own module (one module per command group).

Each module here defines ``register(subparsers)``, which adds its subcommand(s) to the ``sigmasight`` parser
with a ``func`` default taking the parsed arguments and returning the exit code. ``cli.build_parser`` calls
every module's ``register`` (``register_all``), in module-name order.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register_all(subparsers: argparse._SubParsersAction) -> None:
    """Add the subcommands of every module of this package to ``subparsers``."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
