"""The `galaxy-hpc` command: listed subcommands, config errors, env, selftest, exit codes."""

from __future__ import annotations

import json
import subprocess

import pytest

from galaxy_hpc.cli.main import COMMANDS, build_parser, main


def test_help_lists_every_registered_command(galaxy_hpc):
    run = subprocess.run([galaxy_hpc, "--help"], capture_output=True, text=True, check=True)
    listed = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert len(listed) == len(COMMANDS)
    for name in ("config", "env", "selftest", "submit", "demo"):
        assert name in listed and f"    {name}" in run.stdout


def test_config_prints_resolved_yaml(capsys, repo_root):
    assert main(["config", str(repo_root / "configs/cluster/perlmutter.yaml"), "nodes=3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("kind: cluster\n") and "nodes: 3\n" in out


def test_config_json(capsys, repo_root):
    assert main(["config", str(repo_root / "configs/selftest.yaml"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "selftest"


def test_config_bad_key_exits_1_with_one_line_naming_key_and_file(galaxy_hpc, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: selftest\nnum_element: 3\n")
    run = subprocess.run([galaxy_hpc, "config", str(bad)], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "'num_element'" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["config", "nowhere.yaml"], "config file not found: nowhere.yaml"),
    (["config", "{cfg}", "mpi=sometimes"], "mpi: must be one of"),
    (["env", "--export"], "not inside a Slurm job"),
    (["submit", "selftest", "--cluster", "atlantis"], "no cluster profile 'atlantis'"),
])
def test_user_errors_exit_1(capsys, repo_root, args, message, monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST"):
        monkeypatch.delenv(name, raising=False)
    args = [a.replace("{cfg}", str(repo_root / "configs/selftest.yaml")) for a in args]
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(galaxy_hpc):
    run = subprocess.run([galaxy_hpc, "fly"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr


def test_env_json_single_process(galaxy_hpc):
    run = subprocess.run([galaxy_hpc, "env", "--json"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    view = json.loads(run.stdout)
    assert {k: view[k] for k in ("rank", "world_size", "local_rank", "source", "backend")} == \
        {"rank": 0, "world_size": 1, "local_rank": 0, "source": "single", "backend": "gloo"}
    assert set(view) >= {"master_addr", "master_port"}


def test_selftest_single_process(capsys):
    assert main(["selftest", "num_elements=128"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("selftest OK: world_size=1") and "MPI: not checked" in out


def test_selftest_require_mpi_fails_when_not_launched_by_mpi(capsys, monkeypatch):
    for name in ("PMI_RANK", "PMI_FD", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert main(["selftest", "mpi=require"]) == 1
    assert "not started by an MPI launcher" in capsys.readouterr().out
