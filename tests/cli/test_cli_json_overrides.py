"""Two command-line conventions across commands: `--json` prints one JSON document on stdout
and everything else on stderr; `KEY=VALUE` overrides go anywhere after the subcommand."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from galaxy_hpc.cli.main import main
from galaxy_hpc.cli.output import json_mode, print_json
from galaxy_hpc.data.gz2 import ANSWERS, column_name


def cli(galaxy_hpc, *args, cwd=None):
    return subprocess.run([galaxy_hpc, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_json_mode_sends_descriptor_1_and_prints_to_stderr(capfd):
    """What DeepSpeed and C libraries write (descriptor 1, a logger holding sys.stdout) is
    noise beside the result, which alone reaches stdout."""
    with json_mode():
        os.write(1, b"a C library's line\n")
        print("a library's print")
        print_json({"ok": True})
    out, err = capfd.readouterr()
    assert json.loads(out) == {"ok": True}
    assert "a C library's line" in err and "a library's print" in err
    print("after")  # stdout is stdout again
    assert capfd.readouterr().out == "after\n"


def test_every_cheap_json_command_prints_one_document(galaxy_hpc, repo_root, tmp_path):
    """The commands that run in seconds, each in its own process (train, generate, evaluate,
    predict and report are checked the same way in their own tests)."""
    store = tmp_path / "s.zarr"
    votes = tmp_path / "votes.csv"
    columns = [column_name(a, "fraction") for a in ANSWERS]
    votes.write_text("dr7objid," + ",".join(columns) + "\n"
                     + "".join(f"{i}," + ",".join(["0.5"] * len(columns)) + "\n" for i in (1, 2)))
    commands = [
        ["config", repo_root / "configs/selftest.yaml", "--json"],
        ["env", "--json"],
        ["selftest", "--json", "num_elements=16"],
        ["synth", "--n", "4", "--size", "32", "--out", store, "--seed", "3", "--json"],
        ["store", "info", store, "--json"],
        ["caption", votes, "--out", tmp_path / "c.csv", "--json"],
    ]
    for args in commands:
        run = cli(galaxy_hpc, *args, cwd=tmp_path)
        assert run.returncode == 0, (args, run.stderr[-2000:])
        assert isinstance(json.loads(run.stdout), dict), (args, run.stdout)


def test_overrides_after_flags_and_before_the_config(galaxy_hpc, repo_root, tmp_path):
    config = repo_root / "configs/selftest.yaml"
    for args in (["config", config, "--json", "num_elements=7"],
                 ["config", "num_elements=7", config, "--json"],
                 ["config", "--json", "num_elements=7", config]):
        run = cli(galaxy_hpc, *args)
        assert run.returncode == 0, (args, run.stderr)
        assert json.loads(run.stdout)["num_elements"] == 7
    store = tmp_path / "o.zarr"
    run = cli(galaxy_hpc, "synth", "--out", store, "--json", "num_galaxies=3", "galaxy.size=32")
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout)["num_galaxies"] == 3
    run = cli(galaxy_hpc, "selftest", "--json", "num_elements=8")
    assert run.returncode == 0 and json.loads(run.stdout)["ok"], run.stderr[-2000:]


@pytest.mark.parametrize("args, message", [
    (["config", "{cfg}", "--json", "--bogus"], "unrecognized arguments: --bogus"),
    (["config", "{cfg}", "--json", "other.yaml"], "unrecognized arguments: other.yaml"),
    (["config", "--json", "num_elements=7"], "the following arguments are required: file"),
    (["env", "--json", "a=b"], "galaxy-hpc env: error: unrecognized arguments: a=b"),
])
def test_what_is_not_an_override_is_still_a_usage_error(capsys, repo_root, args, message):
    args = [a.replace("{cfg}", str(repo_root / "configs/selftest.yaml")) for a in args]
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_a_path_with_an_equals_sign_is_not_an_override(tmp_path, capsys, repo_root):
    folder = tmp_path / "lr=1e-4"
    folder.mkdir()
    config = folder / "selftest.yaml"
    config.write_text((repo_root / "configs/selftest.yaml").read_text())
    assert main(["config", "--json", str(config), "num_elements=5"]) == 0
    assert json.loads(capsys.readouterr().out)["num_elements"] == 5
