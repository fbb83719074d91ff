"""Every command block of README.md and docs/ runs (or, marked parse-only, parses).

Each page is one scenario: its ```bash blocks run in order, in one fresh directory
holding the checkout's tracked files and nothing else, so a later block uses what an
earlier one wrote, and an example that names a store or folder a fresh clone lacks fails
here. galaxy-hpc comes from the venv running the tests; the checkout's code comes first
on PYTHONPATH. The examples use the tiny configs cut to two steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doc_blocks import (
    OTHER_SHELLS,
    ROOT,
    Block,
    DocCommandError,
    blocks,
    check_parse_block,
    command_blocks,
    doc_pages,
    fresh_clone,
)

RUN_PAGES = [p for p in doc_pages() if any(not b.parse_only for b in command_blocks(p))]
BLOCK_TIMEOUT_S = 600


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"  # tiny models on shared cores: torch's spinning threads cost 3-5x
    env["GHPC_EVAL_CACHE"] = str(home / "eval-cache")
    env["MPLBACKEND"] = "Agg"
    env.pop("VIRTUAL_ENV", None)
    for name in [k for k in env if k.startswith(("SLURM_", "OMPI_", "PMI_", "PMIX_"))]:
        env.pop(name)  # a test run inside a job must not make these commands join it
    return env


def _run(block: Block, cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        pytest.fail(f"{block.where}: exit {done.returncode} running\n{block.text}\n--- output "
                    f"(last lines) ---\n{tail}", pytrace=False)
    return time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_commands_run_from_a_fresh_clone(page: Path, tmp_path: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    env = _env(tmp_path)
    timings = []
    for block in command_blocks(page):
        if not block.parse_only:
            timings.append(f"{block.where} {_run(block, clone, env):.1f}s")
    print("\n".join(timings))  # pytest -s shows what each block costs


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_parse_only_blocks_parse(page: Path) -> None:
    for block in command_blocks(page):
        if block.parse_only:
            check_parse_block(block)  # raises DocCommandError naming the block and command


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_command_blocks_are_bash(page: Path) -> None:
    """A shell block spelt otherwise would be neither run nor parsed."""
    other = [b.where for b in blocks(page) if b.language in OTHER_SHELLS]
    assert not other, f"spell these blocks ```bash so that tests/docs runs them: {other}"


def test_every_guide_has_a_command_or_says_why_not() -> None:
    """The guides per job show commands."""
    for name in ("ingest", "train", "generate", "evaluate", "cluster", "serve"):
        page = ROOT / "docs" / f"{name}.md"
        assert command_blocks(page), f"{page} has no ```bash block"


# --------------------------------------------------------------------------- the checker


def _block(text: str) -> Block:
    return Block(ROOT / "README.md", 1, "bash", text, parse_only=True)


@pytest.mark.parametrize("text, reason", [
    ("galaxy-hpc train configs/train/no_such.yaml\n", "not in the checkout"),
    ("galaxy-hpc train configs/train/sd_lora.yaml run.max_stepz=3\n", "run.max_stepz"),
    ("galaxy-hpc submit train configs/train/sd_lora.yaml --nodez 2\n", "--nodez"),
    ("galaxy-hpc submit selftest --cluster nowhere\n", "configs/cluster/nowhere.yaml"),
    ("sbatch slurm/no_such.sbatch configs/train/sd_lora.yaml\n", "not in the checkout"),
    ("sbatch -N 4 slurm/train_sd.sbatch configs/train/sd_lora.yaml optim.lr=fast\n", "optim.lr"),
    ("jid=$(sbatch --parsable slurm/train_ldm.sbatch configs/train/ldm_vae.yaml model.nope=1)\n",
     "model.nope"),
    ("srun -N2 -n8 .venv/bin/galaxy-hpc evaluate fidd A B\n", "fidd"),
    ("make docz\n", "no such target"),
    # A script the block did not write with `galaxy-hpc sbatch --out` must be in the checkout.
    ("galaxy-hpc sbatch serve --cluster slurm --out a.sbatch\nsbatch b.sbatch\n",
     "no sbatch script b.sbatch"),
    ("galaxy-hpc sbatch train configs/train/gan.yaml --cluster slurm --out t.sbatch\n"
     "sbatch t.sbatch optim.lr=fast\n", "optim.lr"),
])
def test_the_parse_check_refuses_commands_that_would_not_run(text: str, reason: str) -> None:
    with pytest.raises(DocCommandError, match=reason.replace(".", r"\.")):
        check_parse_block(_block(text))


def test_the_parse_check_follows_sbatch_scripts_and_continuations() -> None:
    text = ("sbatch -A m1234 -q regular slurm/train_gan.sbatch \\\n"
            "    configs/train/gan.yaml data.store=$SCRATCH/hsc.zarr\n"
            "sbatch slurm/eval_fid.sbatch physics $SCRATCH/a.zarr $SCRATCH/b.zarr --out x\n"
            "make demo test\n")
    assert check_parse_block(_block(text)) == 2
    written = ("galaxy-hpc sbatch serve --cluster slurm --account m0 --out serve.sbatch\n"
               "sbatch serve.sbatch --store real=$SCRATCH/a.zarr limits.max_steps=20\n")
    assert check_parse_block(_block(written)) == 2
