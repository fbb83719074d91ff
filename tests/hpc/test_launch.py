"""hpc.launch: cluster profiles, the sbatch scripts and submitit parameters they produce (one
source), the shipped slurm/*.sbatch generated from them, and real local-executor jobs."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from galaxy_hpc.cli.main import main
from hpc.config import ConfigError
from hpc.launch import (BatchJob, ClusterProfile, available_profiles, load_profile,
                        render_sbatch_script, sbatch_options, submit_array, submitit_parameters,
                        wait)

HERE = Path(__file__).parent
REPO = HERE.parents[1]
GOLDEN = HERE / "golden"


def test_shipped_profiles_load():
    assert {"local", "slurm", "gpu", "perlmutter"} <= set(available_profiles())
    perlmutter = load_profile("perlmutter")
    assert (perlmutter.constraint, perlmutter.gpus_per_node, perlmutter.tasks_per_node,
            perlmutter.cpus_per_task) == ("gpu", 4, 4, 32)
    assert perlmutter.env["NCCL_NET"] == "AWS Libfabric" and perlmutter.signal_delay_s > 0
    assert load_profile("local").executor == "local"
    assert (load_profile("gpu").gpus_per_node, load_profile("gpu").setup) == (4, [])


def test_profile_overrides_and_errors(tmp_path):
    assert load_profile("perlmutter", ["account=m1234", "nodes=8"]).num_tasks == 32
    with pytest.raises(ValueError, match="no cluster profile 'nope'.*known: .*perlmutter"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="nodes must be 1"):
        load_profile("local", ["nodes=2"])
    with pytest.raises(ConfigError, match="one task per GPU"):
        load_profile("perlmutter", ["tasks_per_node=2"])
    with pytest.raises(ConfigError, match="preempt_signal"):
        load_profile("perlmutter", ["preempt_signal=TERM"])
    own = tmp_path / "site.yaml"
    own.write_text("kind: cluster\nname: site\npartition: batch\ncpus_per_tsk: 4\n")
    with pytest.raises(ConfigError, match="site.yaml: unknown key 'cpus_per_tsk'"):
        load_profile(str(own))


def sbatch_cli(capsys, monkeypatch, *args: str) -> str:
    """`galaxy-hpc sbatch ARGS` in this process: the script it prints."""
    monkeypatch.delenv("GHPC_COMMAND", raising=False)  # the script names the command that wrote it
    capsys.readouterr()
    assert main(["sbatch", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name, args", [
    ("perlmutter", ["train", "{REPO}/configs/train/sd_lora.yaml", "--cluster", "perlmutter",
                    "--account", "m0000"]),
    ("slurm", ["selftest", "--cluster", "slurm", "--partition", "debug", "--nodes", "2",
               "--tasks-per-node", "2", "--time", "10", "mpi=require"]),
])
def test_sbatch_command_matches_golden(name, args, capsys, monkeypatch):
    """`galaxy-hpc sbatch` on a profile, pinned line by line.

    Regenerate after an intended change with GHPC_UPDATE_GOLDEN=1.
    """
    text = sbatch_cli(capsys, monkeypatch, *(a.replace("{REPO}", str(REPO)) for a in args))
    text = text.replace(str(REPO), "{REPO}")
    golden = GOLDEN / f"{name}.sbatch"
    if os.environ.get("GHPC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text.splitlines() == golden.read_text().splitlines()


def test_perlmutter_script_carries_the_profile(capsys, monkeypatch):
    profile = load_profile("perlmutter", ["account=m0000"])
    lines = sbatch_cli(capsys, monkeypatch, "train", "--cluster", "perlmutter", "--account",
                       "m0000", "--nodes", "4").splitlines()
    for line in ("#SBATCH --constraint=gpu", "#SBATCH --gpus-per-node=4", "#SBATCH --account=m0000",
                 "#SBATCH --nodes=4", "#SBATCH --ntasks-per-node=4", "#SBATCH --qos=regular",
                 "#SBATCH --signal=USR2@300", "#SBATCH --requeue", "#SBATCH --gpu-bind=none",
                 "#SBATCH --time=04:00:00", "module load nccl", "export NCCL_NET='AWS Libfabric'",
                 "export FI_MR_CACHE_MONITOR=userfaultfd", 'ghpc_srun train "$@"'):
        assert line in lines
    assert all(line in lines for line in profile.setup_lines())
    # The site setup runs before anything needs galaxy-hpc (modules may put it on PATH).
    assert lines.index("module load cudatoolkit") < lines.index('eval "$(galaxy-hpc env --export)"')
    assert subprocess.run(["bash", "-n"], input="\n".join(lines), text=True).returncode == 0


def test_a_job_that_does_not_handle_the_signal_does_not_ask_for_it(capsys, monkeypatch):
    lines = sbatch_cli(capsys, monkeypatch, "selftest", "--cluster", "gpu").splitlines()
    assert not any(line.startswith(("#SBATCH --signal", "#SBATCH --requeue")) for line in lines)
    assert "#SBATCH --gpus-per-node=4" in lines
    assert 'ghpc_srun evaluate all "$@"' in sbatch_cli(capsys, monkeypatch, "evaluate", "--cluster",
                                                        "slurm").splitlines()


def test_script_and_submitit_take_signal_setup_and_srun_from_the_same_profile_fields():
    """Change the profile: the sbatch script and submitit's parameters change together."""
    profile = load_profile("perlmutter", ["account=m7", "preempt_signal=USR1", "signal_delay_s=45",
                                          "nodes=3", "time_min=1500", "mem_gb=200",
                                          "srun_args=[--cpu-bind=cores]", "env.EXTRA=a b",
                                          "setup=[module load pytorch]"])
    lines = render_sbatch_script(profile, BatchJob("ghpc-x", ("train",))).splitlines()
    params = submitit_parameters(profile, job_name="ghpc-x")
    # Every #SBATCH line of the script, apart from where its log goes, is one submitit
    # writes from additional_parameters (which replace submitit's own of that name).
    forced = {f"#SBATCH --{key.replace('_', '-')}" if value is True else
              f"#SBATCH --{key.replace('_', '-')}={shlex.quote(str(value))}"
              for key, value in params["additional_parameters"].items()}
    script_options = {line for line in lines if line.startswith("#SBATCH")
                      and not line.startswith(("#SBATCH --output", "#SBATCH --open-mode"))}
    assert script_options == forced
    assert {"#SBATCH --signal=USR1@45", "#SBATCH --nodes=3", "#SBATCH --time=1-01:00:00",
            "#SBATCH --mem=200G", "#SBATCH --account=m7"} <= script_options
    assert params["time"] == 1500
    assert params["setup"] == [*profile.setup_lines(), "export SUBMITIT_PREEMPT_SIGNAL=USR1"]
    assert all(line in lines for line in profile.setup_lines())
    assert "export EXTRA='a b'" in lines and "module load pytorch" in lines
    assert params["srun_args"] == ["--cpu-bind=cores"]
    assert "    local -a srun_args=(--kill-on-bad-exit=1 --cpu-bind=cores)" in lines


def test_local_profile_has_no_sbatch_script(capsys, monkeypatch):
    local = ClusterProfile(name="l", executor="local")
    with pytest.raises(ValueError, match="local executor"):
        sbatch_options(local, job_name="x")
    with pytest.raises(ValueError, match="local executor"):
        render_sbatch_script(local, BatchJob("x", ("selftest",)))
    monkeypatch.delenv("GHPC_COMMAND", raising=False)
    assert main(["sbatch", "selftest", "--cluster", "local"]) == 1
    assert "galaxy-hpc sbatch: error: cluster profile 'local' uses the local executor" in \
        capsys.readouterr().err


def test_sbatch_command_checks_the_config_and_writes_an_executable(tmp_path, capsys, monkeypatch):
    config = str(REPO / "configs" / "selftest.yaml")
    assert main(["sbatch", "selftest", config, "num_elemnts=5", "--cluster", "slurm"]) == 1
    assert "unknown key 'num_elemnts'" in capsys.readouterr().err
    out = tmp_path / "st.sbatch"
    assert main(["sbatch", "selftest", config, "num_elements=5", "--cluster", "slurm",
                 "--job-name", "mine", "--out", str(out)]) == 0
    text = out.read_text()
    assert os.access(out, os.X_OK) and "#SBATCH --job-name=mine" in text.splitlines()
    assert f'ghpc_srun selftest {config} num_elements=5 "$@"' in text.splitlines()


def test_a_serve_script_asks_for_one_server_whatever_the_profile(capsys, monkeypatch):
    """A site's profile asks for 4 tasks on 4 GPUs for training; its serve script asks for
    one task, one node, one GPU, and carries the shipped script's tunnel lines."""
    lines = sbatch_cli(capsys, monkeypatch, "serve", "--cluster", "perlmutter", "--account",
                       "m0000", "--nodes", "3", "--tasks-per-node", "4",
                       str(REPO / "configs" / "serve.yaml"), "limits.max_steps=20").splitlines()
    for line in ("#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --account=m0000", "module load cudatoolkit",
                 f'ghpc_srun serve {REPO / "configs" / "serve.yaml"} limits.max_steps=20 "$@"'):
        assert line in lines
    assert not any(line.startswith(("#SBATCH --signal", "#SBATCH --requeue")) for line in lines)
    shipped = (REPO / "slurm" / "serve.sbatch").read_text().splitlines()
    tunnel = [line for line in shipped if line.startswith(("port=", "echo ", "set -- "))]
    assert len(tunnel) == 6 and all(line in lines for line in tunnel)
    assert subprocess.run(["bash", "-n"], input="\n".join(lines), text=True).returncode == 0
    no_gpu = sbatch_cli(capsys, monkeypatch, "serve", "--cluster", "slurm").splitlines()
    assert not any(line.startswith("#SBATCH --gpus") for line in no_gpu)
    assert main(["sbatch", "serve", "port=70000", "--cluster", "slurm"]) == 1
    assert "port must be in 1..65535" in capsys.readouterr().err


def make_sbatch():
    spec = importlib.util.spec_from_file_location("make_sbatch", REPO / "tools" / "make_sbatch.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_shipped_scripts_are_generated_from_the_profiles():
    """slurm/*.sbatch are tools/make_sbatch.py's output, byte for byte: they cannot drift from
    the profiles. After changing a profile or the tool: python tools/make_sbatch.py."""
    tool = make_sbatch()
    scripts = tool.expected()
    assert tool.stale(scripts) == []
    for path in scripts:
        assert os.access(path, os.X_OK), path
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0, path
    # The checker sees a drifted script, and a hand-written one.
    drifted = dict(scripts)
    first = next(iter(drifted))
    drifted[first] += "# edited by hand\n"
    assert tool.stale(drifted) == [f"slurm/{first.name}: differs from its profile's rendering"]
    assert tool.stale({p: t for p, t in scripts.items() if p != first}) == \
        [f"slurm/{first.name}: not made by tools/make_sbatch.py"]


def test_training_scripts_differ_in_name_time_and_usage_only():
    scripts = make_sbatch().expected()

    def code(family: str) -> list[str]:
        text = scripts[REPO / "slurm" / f"train_{family}.sbatch"]
        return [line for line in text.splitlines() if not (line == "#" or line.startswith("# "))]

    sd, gan = code("sd"), code("gan")
    assert len(sd) == len(gan)
    assert [(a, b) for a, b in zip(sd, gan) if a != b] == [
        ("#SBATCH --job-name=ghpc-train-sd", "#SBATCH --job-name=ghpc-train-gan"),
        ("#SBATCH --time=04:00:00", "#SBATCH --time=02:00:00")]


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
