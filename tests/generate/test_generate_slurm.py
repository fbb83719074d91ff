"""The catalog job on the local two-node Slurm cluster: srun with pmi2 over both nodes, and
slurm/generate_catalog.sbatch as a user submits it, make the reference catalog's bytes.

With the mpich wheel's UCX netmod, about one 2-node launch in seven hung or aborted in
MPI_Init under srun --mpi=pmi2, slurmstepd logging "mpi/pmi2: value not properly
terminated in client request"; hpc/__init__.py now selects the wheel's OFI netmod, and
these tests fail if that line shows up again. Jobs carry a time limit so that a hang
cannot hold both nodes for everyone's later jobs.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from gen_helpers import store_content

pytestmark = pytest.mark.slurm
REPO = Path(__file__).resolve().parents[2]
PMI2_FAULT = "mpi/pmi2: value not properly terminated"


def assert_reference(out: Path, reference) -> None:
    checksum, images, _ = store_content(out)
    assert checksum == reference["store"].checksum
    np.testing.assert_array_equal(images, reference["images"])


def srun_once(cmd: list[str], env: dict, cwd: Path,
              timeout_s: float) -> tuple[int, str, str]:
    """(returncode, stdout, stderr) of one launch."""
    run = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout_s)
    return run.returncode, run.stdout, run.stderr


def test_srun_pmi2_over_two_nodes_makes_the_reference_bytes(local_slurm, galaxy_hpc, reference,
                                                             tmp_path):
    out = tmp_path / "srun.zarr"
    cmd = ["srun", "--mpi=pmi2", "-N2", "-n2", "--kill-on-bad-exit=1", "--time=8", galaxy_hpc,
           "generate", str(reference["config"]), f"out={out}", "--json"]
    code, stdout, stderr = srun_once(cmd, {**local_slurm, "OMP_NUM_THREADS": "1"}, tmp_path,
                                     600)
    assert PMI2_FAULT not in stderr
    assert code == 0, stdout[-2000:] + stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["num_ranks"] == 2 and sum(result["shards_per_rank"]) == 12
    assert_reference(out, reference)


def sbatch_once(args: list[str], env: dict, tmp_path: Path) -> tuple[str, str, str]:
    """(job id, final state, log)."""
    job_id = subprocess.run(["sbatch", "--parsable", *args], env=env, capture_output=True,
                            text=True, check=True).stdout.strip().split(";")[0]
    log_path = tmp_path / f"generate-{job_id}.out"
    deadline = time.time() + 600
    while True:
        log = log_path.read_text() if log_path.exists() else ""
        show = subprocess.run(["scontrol", "show", "job", job_id], env=env,
                              capture_output=True, text=True).stdout
        state = re.search(r"JobState=(\w+)", show)
        if state is None or state.group(1) not in ("PENDING", "RUNNING", "CONFIGURING",
                                                   "COMPLETING"):
            accounted = subprocess.run(["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"],
                                       env=env, capture_output=True, text=True).stdout.split()
            final = state.group(1) if state else (accounted[0] if accounted else "UNKNOWN")
            return job_id, final, log_path.read_text() if log_path.exists() else ""
        assert time.time() < deadline, f"job {job_id} did not finish in time:\n{log[-2000:]}"
        time.sleep(1)


def test_sbatch_generate_catalog_over_two_nodes(local_slurm, reference, tmp_path):
    out = tmp_path / "sbatch.zarr"
    env = {**local_slurm, "GALAXY_HPC_HOME": str(REPO)}
    args = ["--time=8", "-N2", "--ntasks-per-node=1", "--gpus-per-node=0", "--cpus-per-task=1",
            f"--output={tmp_path}/generate-%j.out", f"--chdir={tmp_path}",
            str(REPO / "slurm" / "generate_catalog.sbatch"), str(reference["config"]),
            f"out={out}"]
    job_id, state, log = sbatch_once(args, env, tmp_path)
    assert PMI2_FAULT not in log
    assert state == "COMPLETED", log[-3000:]
    assert f"job {job_id} on 2 node(s)" in log
    assert f"wrote a catalog of 48 objects to {out}" in log and "(2 rank(s)" in log
    assert_reference(out, reference)
    assert (tmp_path / "sbatch.fits").is_file()
