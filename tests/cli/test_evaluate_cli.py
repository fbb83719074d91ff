"""`galaxy-hpc evaluate EVALUATION`: a config file and `a.b=value` overrides like every batch
command, the stores as positionals, and flags that are the config's fields (so their
defaults cannot drift from the dataclasses')."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from galaxy_hpc.cli import main as cli_main
from galaxy_hpc.cli.batch import load_batch_config, resolve_inputs
from galaxy_hpc.cli.evaluate_cmd import EVALUATIONS
from hpc.config import kind_class, load_config
from hpc.config_flags import config_flag_actions

REPO = Path(__file__).resolve().parents[2]
# Not config fields: what every evaluation adds around its config.
OWN_OPTIONS = {"help", "json", "out"}


def evaluate_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli_main.build_parser()
    evaluate = parser._subparsers._group_actions[0].choices["evaluate"]
    return dict(evaluate._subparsers._group_actions[0].choices)


def config_class(name: str) -> type:
    return kind_class(EVALUATIONS[name].kind or name)


def field_default(cls: type, path: str):
    """The dataclass's own default at a dotted path, read without building the config."""
    *sections, name = path.split(".")
    for section in sections:
        cls = next(f for f in dataclasses.fields(cls) if f.name == section).default_factory
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def config_of(*argv: str):
    """The config `galaxy-hpc evaluate ARGV` would run, parsed as main() parses it."""
    parser = cli_main.build_parser()
    args, rest = parser.parse_known_args(["evaluate", *argv])
    cli_main._gather_overrides(parser, args, rest)
    resolve_inputs(args, EVALUATIONS[args.evaluation].stores)
    return load_batch_config(config_class(args.evaluation), args)


@pytest.mark.parametrize("name", list(EVALUATIONS))
def test_every_flag_is_a_config_field_with_the_dataclass_default(name):
    parser = evaluate_parsers()[name]
    derived = config_flag_actions(parser)
    assert derived, name
    for action in parser._actions:
        if action.option_strings and action.dest not in OWN_OPTIONS:
            assert action in derived, f"{name}: {action.option_strings} is written by hand"
    for action in derived:
        assert action.default == field_default(config_class(name), action.dest), \
            (name, action.dest)


@pytest.mark.parametrize("argv, expected", [
    (["fid", "r.zarr", "g.zarr", "--extractor", "x", "--weights", "w", "--extractor-module",
      "m", "--batch-size", "8", "--rgb-bands", "2,1,0", "--device", "cpu", "--metrics",
      "fid,prc", "--max-kept-features", "9", "--kid-subsets", "3", "--kid-subset-size", "5",
      "--isc-splits", "2", "--seed", "1", "--cache-dir", "c", "--no-cache"],
     {"real": "r.zarr", "generated": "g.zarr", "features.extractor": "x",
      "features.weights": "w", "features.extractor_module": "m", "features.batch_size": 8,
      "features.rgb_bands": [2, 1, 0], "features.device": "cpu", "metrics": ["fid", "prc"],
      "max_kept_features": 9, "kid_subsets": 3, "kid_subset_size": 5, "isc_splits": 2,
      "seed": 1, "cache_dir": "c", "cache": False}),
    (["physics", "--max-galaxies", "6", "--band", "1", "--bins", "8", "--threshold-sigmas",
      "2", "r.zarr", "g.zarr"],
     {"real": "r.zarr", "generated": "g.zarr", "max_galaxies": 6, "band": 1, "num_bins": 8,
      "threshold_sigmas": 2.0}),
    (["morphology", "g.zarr", "pred", "--real", "r.zarr", "--vote-suffix", "votes",
      "--stretch", "{}", "--batch-size", "4", "--device", "cpu"],
     {"generated": "g.zarr", "predictor": "pred", "real": "r.zarr", "vote_suffix": "votes",
      "stretch": "{}", "batch_size": 4, "device": "cpu"}),
    (["conditioning", "g.zarr", "--pairs", "redshift:total_flux", "--by", "", "--bins", "2",
      "--real", "r.zarr"],
     {"generated": "g.zarr", "pairs": ["redshift:total_flux"], "by": None, "num_bins": 2,
      "real": "r.zarr"}),
])
def test_the_flags_users_rely_on_still_mean_what_they_meant(argv, expected):
    cfg = config_of(*argv)
    for path, value in expected.items():
        owner = cfg
        for part in path.split("."):
            owner = getattr(owner, part)
        assert owner == value, path


def test_file_then_stores_then_overrides_then_flags(tmp_path):
    config = tmp_path / "fid.yaml"
    config.write_text("kind: fid\nreal: file.zarr\nmax_kept_features: 7\nkid_subsets: 5\n"
                      "features: {batch_size: 32}\n")
    cfg = config_of("fid", str(config), "r.zarr", "g.zarr", "features.batch_size=8",
                    "kid_subsets=4", "--kid-subsets", "3", "--extractor=dinov2-vit-b-14")
    assert (cfg.real, cfg.generated) == ("r.zarr", "g.zarr")  # positionals over the file
    assert cfg.max_kept_features == 7  # from the file: no flag's default replaces it
    assert cfg.features.batch_size == 8 and cfg.kid_subsets == 3  # the flag wins
    assert cfg.features.extractor == "dinov2-vit-b-14"
    only_overrides = config_of("fid", str(config), "generated=g.zarr", "seed=3")
    assert (only_overrides.real, only_overrides.generated, only_overrides.seed) == \
        ("file.zarr", "g.zarr", 3)


@pytest.mark.parametrize("name", ["fid", "physics", "morphology", "morphology-fidelity",
                                  "conditioning"])
def test_each_evaluation_ships_a_config_of_its_defaults(name):
    """configs/evaluate/KIND.yaml names its kind and says what the dataclass says."""
    path = REPO / "configs" / "evaluate" / f"{EVALUATIONS[name].kind or name}.yaml"
    assert load_config(path) == config_class(name)()
    assert config_of(name, str(path), "max_galaxies=3" if name == "physics" else "real=r") \
        != config_class(name)()


def test_a_config_of_another_kind_and_extra_positionals_are_one_line_errors(capsys):
    physics = REPO / "configs" / "evaluate" / "physics.yaml"
    assert cli_main.main(["evaluate", "fid", str(physics), "r.zarr", "g.zarr"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "kind is 'physics'" in err and str(physics) in err
    assert cli_main.main(["evaluate", "physics", "a.zarr", "b.zarr", "c.zarr"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unexpected 'c.zarr'" in err
    assert cli_main.main(["evaluate", "physics", "a.zarr", "b.zarr", "num_bin=3"]) == 1
    assert "did you mean 'num_bins'" in capsys.readouterr().err


def test_help_shows_each_fields_own_help_and_default():
    text = " ".join(evaluate_parsers()["physics"].format_help().split())
    assert "--num-bins NUM_BINS, --bins NUM_BINS histogram bins (default: 30)" in text
    assert "[CONFIG] REAL_STORE GEN_STORE" in text
    fid = " ".join(evaluate_parsers()["fid"].format_help().split())
    assert "--cache, --no-cache" in fid and "(default: inception-v3-compat)" in fid
