"""hpc.launch: cluster profiles, the sbatch script they produce, and real local-executor jobs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from hpc.config import ConfigError
from hpc.launch import ClusterProfile, available_profiles, load_profile, sbatch_script, submit_array, wait

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"


def test_shipped_profiles_load():
    assert {"local", "slurm", "perlmutter"} <= set(available_profiles())
    perlmutter = load_profile("perlmutter")
    assert (perlmutter.constraint, perlmutter.gpus_per_node, perlmutter.tasks_per_node,
            perlmutter.cpus_per_task) == ("gpu", 4, 4, 32)
    assert perlmutter.env["NCCL_NET"] == "AWS Libfabric" and perlmutter.signal_delay_s > 0
    assert load_profile("local").executor == "local"


def test_profile_overrides_and_errors(tmp_path):
    assert load_profile("perlmutter", ["account=m1234", "nodes=8"]).num_tasks == 32
    with pytest.raises(ValueError, match="no cluster profile 'nope'.*known: .*perlmutter"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="nodes must be 1"):
        load_profile("local", ["nodes=2"])
    with pytest.raises(ConfigError, match="one task per GPU"):
        load_profile("perlmutter", ["tasks_per_node=2"])
    own = tmp_path / "site.yaml"
    own.write_text("kind: cluster\nname: site\npartition: batch\ncpus_per_tsk: 4\n")
    with pytest.raises(ConfigError, match="site.yaml: unknown key 'cpus_per_tsk'"):
        load_profile(str(own))


def test_perlmutter_sbatch_script_matches_golden(tmp_path):
    """The script submitit would submit on Perlmutter, pinned line by line.

    Regenerate after an intended change with GHPC_UPDATE_GOLDEN=1.
    """
    profile = load_profile("perlmutter", ["account=m0000"])
    logs = tmp_path / "logs"
    text = sbatch_script(profile, job_name="ghpc-train", folder=logs).replace(str(logs), "{LOGS}")
    golden = GOLDEN / "perlmutter.sbatch"
    if os.environ.get("GHPC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text.splitlines() == golden.read_text().splitlines()
    for line in ("#SBATCH --constraint=gpu", "#SBATCH --gpus-per-node=4", "#SBATCH --account=m0000",
                 "#SBATCH --ntasks-per-node=4", "#SBATCH --signal=USR2@300", "module load nccl",
                 "export NCCL_NET='AWS Libfabric'"):
        assert line in text.splitlines()


def test_local_profile_has_no_sbatch_script():
    with pytest.raises(ValueError, match="local executor"):
        sbatch_script(ClusterProfile(name="l", executor="local"), job_name="x", folder="/tmp")


def test_local_executor_job_array(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    from launch_jobs import square_with_rank

    profile = ClusterProfile(name="local", executor="local", tasks_per_node=1, time_min=5)
    jobs = submit_array(square_with_rank, [2, 3, 4], profile=profile, job_name="t", folder=tmp_path)
    assert [wait(job, poll_s=0.2)[0][0] for job in jobs] == [4, 9, 16]
    assert all(job.stdout.parent.is_dir() for job in jobs)


def test_submit_selftest_to_local_executor(galaxy_hpc, tmp_path):
    run = subprocess.run(
        [galaxy_hpc, "submit", "selftest", "--cluster", "local", "--tasks-per-node", "2",
         "--log-dir", str(tmp_path / "logs"), "--wait", "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    info = json.loads(run.stdout.strip().splitlines()[-1])
    assert info["ok"] and info["num_tasks"] == 2 and info["state"] == "FINISHED"
    assert Path(info["stdout"]).parent.parent == tmp_path / "logs"
