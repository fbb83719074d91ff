"""Objects named by "package.module:attribute" strings, imported on first use.

Registries (config kinds, jobs, model families, generators) name what they hold this
way so that listing them, or checking a config on a login node, imports neither torch
nor diffusers. One helper resolves them all, so that a bad name gives the same clear
error wherever it is written.
"""

from __future__ import annotations

import importlib
from typing import Any


def check_target(target: str, what: str) -> str:
    """`target` if it has the "module:attribute" form, else a ValueError naming `what`."""
    module, sep, attr = target.partition(":")
    if not (module and sep and attr):
        raise ValueError(f"{what}: expected 'package.module:attribute', got {target!r}")
    return target


def import_target(target: str, what: str = "import target") -> Any:
    """The object `target` ("package.module:attribute") names, its module imported now."""
    module, _, attr = check_target(target, what).partition(":")
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and module.startswith(error.name):
            raise ValueError(f"{what}: no module {module!r} (from {target!r})") from None
        raise
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ValueError(f"{what}: {module} has no {attr!r} (from {target!r})") from None
    return found
