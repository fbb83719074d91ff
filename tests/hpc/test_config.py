"""hpc.config: typed configs from YAML, overrides, and errors that name the key and the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from hpc.config import (
    ConfigError,
    apply_overrides,
    dump_yaml,
    from_dict,
    load_config,
    parse_override,
    register_kind,
)


@dataclass
class Optim:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Demo:
    name: str
    steps: int = 10
    precision: Literal["fp32", "bf16"] = "fp32"
    optim: Optim = field(default_factory=Optim)
    tags: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)
    resume: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


register_kind("test-demo", f"{__name__}:Demo")


@dataclass
class _OtherKind:
    a: int = 1


register_kind("test-other-kind", f"{__name__}:_OtherKind")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loads_nested_types_and_kind(tmp_path):
    path = write(tmp_path, "a.yaml", """
kind: test-demo
name: run1
steps: 5
precision: bf16
optim: {lr: 3e-4, betas: [0.8, 0.99]}
tags: [a, b]
extra: {x: 1}
""")
    cfg = load_config(path)
    assert isinstance(cfg, Demo)
    assert cfg.optim.lr == pytest.approx(3e-4)  # YAML reads 3e-4 as a string; accepted as float
    assert cfg.optim.betas == (0.8, 0.99)
    assert cfg.tags == ["a", "b"] and cfg.extra == {"x": 1} and cfg.precision == "bf16"


def test_unknown_key_names_dotted_key_file_and_suggestion(tmp_path):
    path = write(tmp_path, "bad.yaml", "kind: test-demo\nname: x\noptim: {lrr: 1.0}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "'optim.lrr'" in message and "did you mean 'optim.lr'" in message


@pytest.mark.parametrize("text, key, expected", [
    ("steps: ten", "steps", "expected int"),
    ("steps: 2.5", "steps", "expected int"),
    ("precision: fp8", "precision", "must be one of"),
    ("optim: {betas: [0.9]}", "optim.betas", "expected 2 items"),
    ("tags: a", "tags", "expected list"),
    ("optim: 3", "optim", "expected a mapping"),
])
def test_wrong_type_names_key_and_file(tmp_path, text, key, expected):
    path = write(tmp_path, "bad.yaml", f"kind: test-demo\nname: x\n{text}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and key in str(error.value) and expected in str(error.value)


def test_post_init_validation_is_reported_with_the_file(tmp_path):
    path = write(tmp_path, "bad.yaml", "kind: test-demo\nname: x\nsteps: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: top level: steps must be >= 1"):
        load_config(path)


def test_missing_required_key(tmp_path):
    path = write(tmp_path, "bad.yaml", "kind: test-demo\nsteps: 3\n")
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        load_config(path)


def test_overrides_are_typed_and_blamed_on_the_command_line(tmp_path):
    path = write(tmp_path, "a.yaml", "kind: test-demo\nname: x\n")
    cfg = load_config(path, ["steps=7", "optim.lr=0.5", "tags=[u, v]", "resume=null"])
    assert (cfg.steps, cfg.optim.lr, cfg.tags, cfg.resume) == (7, 0.5, ["u", "v"], None)
    with pytest.raises(ConfigError) as error:
        load_config(path, ["optim.lrr=1"])
    assert "with overrides optim.lrr=1" in str(error.value) and "'optim.lrr'" in str(error.value)
    with pytest.raises(ConfigError, match="expected int"):
        load_config(path, ["steps=abc"])


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("steps")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("a..b=1")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"steps": 3}, ["steps.x=1"])


def test_inherit_merges_mappings_and_detects_cycles(tmp_path):
    write(tmp_path, "base.yaml", "kind: test-demo\nname: base\nsteps: 100\noptim: {lr: 0.1}\n")
    child = write(tmp_path, "child.yaml", "inherit: base.yaml\nsteps: 2\noptim: {betas: [0.5, 0.6]}\n")
    cfg = load_config(child)
    assert (cfg.name, cfg.steps, cfg.optim.lr, cfg.optim.betas) == ("base", 2, 0.1, (0.5, 0.6))
    write(tmp_path, "x.yaml", "inherit: y.yaml\n")
    write(tmp_path, "y.yaml", "inherit: x.yaml\n")
    with pytest.raises(ConfigError, match="inherit cycle"):
        load_config(tmp_path / "x.yaml", cls=Demo)


def test_errors_name_the_file_of_an_inherit_chain_that_holds_the_bad_key(tmp_path):
    """A typo in a parent is the parent's to fix, even when the child is the file loaded."""
    write(tmp_path, "grand.yaml", "kind: test-demo\nname: g\noptim: {lr: fast}\n")
    write(tmp_path, "base.yaml", "inherit: grand.yaml\nstpes: 3\n")
    child = write(tmp_path, "child.yaml", "inherit: base.yaml\noptim: {betas: [0.5, 0.6]}\n")
    with pytest.raises(ConfigError) as error:
        load_config(child)
    assert str(error.value).startswith(
        f"{tmp_path / 'base.yaml'} (inherited by {child}): unknown key 'stpes' "
        "(did you mean 'steps'?)")
    write(tmp_path, "base.yaml", "inherit: grand.yaml\nsteps: 3\n")
    with pytest.raises(ConfigError) as error:
        load_config(child)
    assert str(error.value) == (f"{tmp_path / 'grand.yaml'} (inherited by {child}): optim.lr: "
                                "expected float, got str 'fast'")
    write(tmp_path, "grand.yaml", "kind: test-demo\nname: g\n")
    write(tmp_path, "child.yaml", "inherit: base.yaml\noptim: {betaz: 1}\n")
    with pytest.raises(ConfigError, match=rf"^{child}: unknown key 'optim.betaz'"):
        load_config(child)
    write(tmp_path, "child.yaml", "inherit: base.yaml\nprecision: fp8\n")
    with pytest.raises(ConfigError, match=rf"^{child}: precision: must be one of"):
        load_config(child)


def test_kind_mismatch_and_unknown_kind(tmp_path):
    path = write(tmp_path, "a.yaml", "kind: test-demo\nname: x\n")
    with pytest.raises(ConfigError, match="kind is 'test-demo'"):
        load_config(path, cls=_OtherKind)
    unknown = write(tmp_path, "u.yaml", "kind: nope\n")
    with pytest.raises(ConfigError, match="unknown config kind 'nope'"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="cannot be overridden"):
        load_config(path, ["kind=other"])



def test_dump_round_trips(tmp_path):
    cfg = from_dict(Demo, {"name": "r", "optim": {"lr": 0.25}, "tags": ["t"]})
    text = dump_yaml(cfg)
    assert text.startswith("kind: test-demo\n")
    path = write(tmp_path, "round.yaml", text)
    assert load_config(path) == cfg


def test_not_a_mapping_and_missing_file(tmp_path):
    path = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(path, cls=Demo)
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_config(tmp_path / "nowhere.yaml", cls=Demo)


@dataclass
class Section:
    a: int = 1
    b: str = "class default"


def _family_section() -> Section:
    return Section(b="family default")


@dataclass
class WithSection:
    section: Section = field(default_factory=_family_section)


def test_partial_section_keeps_the_fields_own_default():
    cfg = from_dict(WithSection, {"section": {"a": 5}})
    assert cfg.section == Section(a=5, b="family default")
    assert from_dict(WithSection, {}).section.b == "family default"
