"""DESIGN.md's layering, checked on the source: imports only point down.

- hpc/ never imports galaxy_hpc (cluster machinery knows nothing of galaxies);
- model code never imports distributed machinery (torch.distributed, deepspeed,
  mpi4py, submitit): a model never knows how many ranks exist.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def offending(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((REPO / folder).rglob("*.py")):
        bad = sorted(m for m in imported_modules(path)
                     if any(m == f or m.startswith(f + ".") for f in forbidden))
        if bad:
            found[str(path.relative_to(REPO))] = bad
    return found


def test_hpc_knows_nothing_of_galaxies():
    assert list((REPO / "hpc").rglob("*.py")), "hpc/ has no modules"
    assert offending("hpc", ("galaxy_hpc",)) == {}


@pytest.mark.parametrize("folder", ["galaxy_hpc/models"])
def test_models_import_no_distributed_machinery(folder):
    forbidden = ("torch.distributed", "deepspeed", "mpi4py", "submitit", "hpc.dist", "hpc.mpi",
                 "hpc.launch")
    assert offending(folder, forbidden) == {}


def test_the_checker_sees_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import torch.distributed as d\nfrom deepspeed import zero\n")
    assert imported_modules(sample) >= {"torch.distributed", "deepspeed"}
