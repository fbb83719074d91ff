"""DESIGN.md's layering, checked on the source: imports only point down.

- hpc/ never imports galaxy_hpc (cluster machinery knows nothing of galaxies);
- model code never imports distributed machinery (torch.distributed, deepspeed,
  mpi4py, submitit): a model never knows how many ranks exist;
- model code never imports the jobs that drive it (the trainer, the catalog job, the
  evaluations, the CLI, the registry): they come to the models through the contracts in
  galaxy_hpc/models/contract.py, never the other way round.
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
                 "hpc.launch", "hpc.comm", "hpc.zero")
    assert offending(folder, forbidden) == {}


def test_models_import_none_of_the_jobs_that_drive_them():
    forbidden = ("galaxy_hpc.train", "galaxy_hpc.generate", "galaxy_hpc.evaluate",
                 "galaxy_hpc.cli", "galaxy_hpc.jobs", "galaxy_hpc.registry", "galaxy_hpc.demo")
    assert offending("galaxy_hpc/models", forbidden) == {}


def test_registry_and_contracts_import_no_torch():
    """`galaxy-hpc config` and the CLI read them on login nodes: no torch, no diffusers."""
    import subprocess
    import sys

    code = ("import sys, galaxy_hpc.registry, galaxy_hpc.models.contract, galaxy_hpc.jobs\n"
            "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers', 'deepspeed')"
            " if m in sys.modules)\nprint(','.join(heavy))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=REPO).stdout.strip()
    assert found == ""


def test_the_checker_sees_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import torch.distributed as d\nfrom deepspeed import zero\n"
                      "def f():\n    from galaxy_hpc.train.loop import train\n")
    assert imported_modules(sample) >= {"torch.distributed", "deepspeed", "galaxy_hpc.train.loop"}
