"""The catalog job on the local two-node Slurm cluster: srun with pmi2 over both nodes, and
slurm/generate_catalog.sbatch as a user submits it, make the reference catalog's bytes.

Both carry a Slurm time limit: once in a few runs here, MPI_Init under srun --mpi=pmi2
hung in the mpich wheel's PMI2 exchange (slurmstepd: "mpi/pmi2: value not properly
terminated in client request"), before any of our code ran; the limit makes Slurm end
such a step instead of leaving it to hold both nodes for everyone's later jobs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import store_content

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]


def assert_reference(out: Path, reference) -> None:
    checksum, images, _ = store_content(out)
    assert checksum == reference["store"].checksum
    np.testing.assert_array_equal(images, reference["images"])


def test_srun_pmi2_over_two_nodes_makes_the_reference_bytes(local_slurm, galaxy_hpc, reference,
                                                             tmp_path):
    out = tmp_path / "srun.zarr"
    done = subprocess.run(["srun", "--mpi=pmi2", "-N2", "-n2", "--kill-on-bad-exit=1", "--time=8",
                           galaxy_hpc, "generate", str(reference["config"]), f"out={out}",
                           "--json"], env={**local_slurm, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["num_ranks"] == 2 and sum(result["shards_per_rank"]) == 12
    assert_reference(out, reference)


def test_sbatch_generate_catalog_over_two_nodes(local_slurm, reference, tmp_path):
    out = tmp_path / "sbatch.zarr"
    env = {**local_slurm, "GALAXY_HPC_HOME": str(REPO)}
    done = subprocess.run(
        ["sbatch", "--wait", "--parsable", "--time=8", "-N2", "--ntasks-per-node=1",
         "--gpus-per-node=0",
         "--cpus-per-task=1", f"--output={tmp_path}/generate-%j.out", f"--chdir={tmp_path}",
         str(REPO / "slurm" / "generate_catalog.sbatch"), str(reference["config"]), f"out={out}"],
        env=env, capture_output=True, text=True, timeout=600)
    job_id = done.stdout.strip().split(";")[0]
    log = (tmp_path / f"generate-{job_id}.out").read_text() if job_id else done.stderr
    assert done.returncode == 0, log[-3000:]
    assert f"job {job_id} on 2 node(s)" in log
    assert f"wrote a catalog of 48 objects to {out}" in log and "(2 rank(s)" in log
    assert_reference(out, reference)
    assert (tmp_path / "sbatch.fits").is_file()
