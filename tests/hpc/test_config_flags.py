"""Flags read off a config dataclass: name, type, default and help come from the field, a
flag given becomes an override, a flag not given changes nothing."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Literal

import pytest

from hpc.config import apply_overrides, from_dict
from hpc.config_flags import (
    add_config_flags,
    config_flag_actions,
    config_overrides,
    field_help,
)


@dataclass
class Features:
    extractor: str = "inception"  # the network that turns images into features
    batch_size: int = 64
    scale: float = 1.0


@dataclass
class Sample:
    store: str = ""  # the store read
    # Galaxies measured, evenly spaced
    # (the rest are skipped).
    max_galaxies: int = 5000
    band: int | None = None  # none: the sum of the bands
    cache: bool = True  # reuse statistics
    device: Literal["auto", "cpu", "cuda"] = "auto"
    metrics: list[str] = field(default_factory=lambda: ["fid", "kid"])
    bands: list[int] | None = None
    weights: dict[str, float] = field(default_factory=dict)  # no flag holds a mapping
    num_bins: int = field(default=30, metadata={"help": "histogram bins"})
    features: Features = field(default_factory=Features)
    batch_size: int = 8  # the sample's own: the section's batch_size gets its path


def parser_for(cls=Sample, **options) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t")
    add_config_flags(parser, cls, **options)
    return parser


def loaded(*argv: str, cls=Sample) -> Sample:
    """What the flags make of the config: overrides applied to the defaults, typed."""
    args = parser_for(cls).parse_args(argv)
    return from_dict(cls, apply_overrides({}, config_overrides(args)), source="flags")


def test_flag_names_follow_fields_and_sections():
    options = {a.dest: a.option_strings for a in config_flag_actions(parser_for())}
    assert options["max_galaxies"] == ["--max-galaxies"]
    assert options["cache"] == ["--cache", "--no-cache"]
    assert options["features.extractor"] == ["--extractor"]  # unique: its own name
    assert options["features.batch_size"] == ["--features-batch-size"]  # taken: its path
    assert options["batch_size"] == ["--batch-size"]
    assert "weights" not in options  # a mapping: only `weights.x=1` reaches it


def test_help_is_the_fields_comment_or_metadata_with_its_default():
    helps = field_help(Sample)
    assert helps["max_galaxies"] == "Galaxies measured, evenly spaced (the rest are skipped)."
    assert helps["store"] == "the store read" and helps["num_bins"] == "histogram bins"
    text = parser_for().format_help()
    for line in ("the store read (default: '')", "(default: 5000)", "(default: auto)",
                 "{auto,cpu,cuda}", "(default: fid,kid)", "('' for none)"):
        assert line in " ".join(text.split()), line


def test_parsed_values_have_the_fields_types():
    cfg = loaded("--max-galaxies", "7", "--no-cache", "--device", "cpu", "--metrics",
                 "fid, isc", "--bands", "2,1,0", "--features-batch-size", "16", "--scale",
                 "0.5", "--band", "2")
    assert (cfg.max_galaxies, cfg.cache, cfg.device, cfg.metrics, cfg.bands, cfg.band) == \
        (7, False, "cpu", ["fid", "isc"], [2, 1, 0], 2)
    assert cfg.features == Features("inception", 16, 0.5)
    assert loaded("--band", "").band is None  # '' is none for an optional field
    assert loaded("--store", "123").store == "123"  # a string stays a string


@pytest.mark.parametrize("argv", [["--device", "tpu"], ["--max-galaxies", "many"],
                                  ["--bands", "1,x"]])
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        parser_for().parse_args(argv)
    assert stop.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_only_flags_given_become_overrides_in_order():
    parser = parser_for()
    assert config_overrides(parser.parse_args([])) == []
    args = parser.parse_args(["--num-bins", "3", "--cache", "--extractor", "a b"])
    assert config_overrides(args) == ["num_bins=3", "cache=true", 'features.extractor="a b"']


def test_parser_defaults_are_the_dataclass_defaults():
    defaults = vars(parser_for().parse_args([]))
    sample = Sample()
    for action in config_flag_actions(parser_for()):
        owner = sample
        *sections, name = action.dest.split(".")
        for part in sections:
            owner = getattr(owner, part)
        assert defaults[action.dest] == getattr(owner, name), action.dest


def test_a_changed_dataclass_changes_its_flags():
    @dataclass
    class Changed(Sample):
        max_galaxies: float = 0.5  # a fraction now

    text = " ".join(parser_for(Changed).format_help().split())
    assert "a fraction now (default: 0.5)" in text
    assert "the store read (default: '')" in text  # the base's comments still speak
    assert loaded("--max-galaxies", "0.25", cls=Changed).max_galaxies == 0.25


def test_exclude_sections_and_aliases():
    parser = parser_for(exclude=("store",), sections=False, aliases={"num_bins": "--bins"})
    options = {a.dest: a.option_strings for a in config_flag_actions(parser)}
    assert "store" not in options and not any("." in dest for dest in options)
    assert options["num_bins"] == ["--num-bins", "--bins"]
    assert config_overrides(parser.parse_args(["--bins", "4"])) == ["num_bins=4"]
