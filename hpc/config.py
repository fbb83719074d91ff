"""Typed configs: dataclasses loaded from YAML, with `a.b=value` overrides.

Why not a dict: a typo in a key of a 40-key training config silently does
nothing with dicts; here it fails at load time with the key's dotted name, the
file it came from and the nearest valid key. Types are checked the same way.

A YAML file names its schema with a top-level `kind:` (e.g. `kind: cluster`),
so `galaxy-hpc config FILE` can resolve any config without being told what it
is. Kinds are registered lazily as "module:Class" strings, which keeps
`hpc` free of any knowledge of who registers what, and keeps heavy imports
(torch, diffusers) out of commands that only read a config.

A file may start from another with `inherit: other.yaml` (a path relative to
the file); mappings merge key by key, everything else is replaced. Tiny CPU
variants of real recipes are written this way. Each key remembers the file
that set it last, so an error names the file to edit, parent or child.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from hpc.imports import check_target, import_target

T = TypeVar("T")

_KINDS: dict[str, str] = {}


class ConfigError(ValueError):
    """A config file or override that does not fit its schema."""


def register_kind(name: str, target: str) -> None:
    """Register a config kind as "package.module:DataclassName" (imported on first use)."""
    _KINDS[name] = check_target(target, f"config kind {name!r}")


def registered_kinds() -> list[str]:
    return sorted(_KINDS)


def kind_class(name: str) -> type:
    if name not in _KINDS:
        known = ", ".join(registered_kinds()) or "none registered"
        raise ConfigError(f"unknown config kind {name!r} (known kinds: {known})")
    return import_target(_KINDS[name], f"config kind {name!r}")


def kind_of(cls: type) -> str | None:
    target = f"{cls.__module__}:{cls.__qualname__}"
    return next((k for k, v in _KINDS.items() if v == target), None)


# --------------------------------------------------------------------------- reading


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, resolving `inherit:` chains."""
    return _read_yaml(path, ())[0]


def _read_yaml(path: str | Path,
               _seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged mapping, and the file that set each dotted key (the last one to)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ConfigError(f"{path}: inherit cycle: {chain}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    parent = data.pop("inherit", None)
    own = _origins(data, str(path))
    if parent is None:
        return data, own
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'inherit' must be a path string")
    base, inherited = _read_yaml(path.parent / parent, (*_seen, resolved))
    return deep_merge(base, data), {**inherited, **own}


def _origins(data: Mapping[str, Any], file: str, prefix: str = "") -> dict[str, str]:
    found = {}
    for key, value in data.items():
        found[f"{prefix}{key}"] = file
        if isinstance(value, Mapping):
            found.update(_origins(value, file, f"{prefix}{key}."))
    return found


class _Source(str):
    """The name errors give (the file loaded), knowing which file of an inherit chain set
    each key: a typo in a parent is reported against the parent, not the child."""

    origins: dict[str, str]

    def __new__(cls, name: str, origins: dict[str, str]) -> "_Source":
        source = super().__new__(cls, name)
        source.origins = origins
        return source

    def of(self, key: str) -> str:
        parts = key.split("[")[0].split(".")
        for depth in range(len(parts), 0, -1):
            file = self.origins.get(".".join(parts[:depth]))
            if file is not None:
                return file if file == str(self) else f"{file} (inherited by {self})"
        return str(self)


def _at(source: str, key: str) -> str:
    """The file to blame for `key`."""
    return source.of(key) if isinstance(source, _Source) else source


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b=value`; the value is read as YAML (`3`, `true`, `null`, `[1, 2]`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=1e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    data = deep_merge(data, {})
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                dotted = ".".join(keys[: depth + 1])
                raise ConfigError(f"override {text!r}: {dotted} is a value, not a section")
            else:
                child = node[key] = dict(child)
            node = child
        node[keys[-1]] = value
    return data


# --------------------------------------------------------------------------- building


def load_config(path: str | Path, overrides: Sequence[str] = (), cls: type[T] | None = None) -> T:
    """Load a config file into its dataclass.

    `cls` is taken from the file's `kind:` when not given; when both are
    present they must agree.
    """
    data, origins = _read_yaml(path, ())
    kind = data.pop("kind", None)
    if cls is None:
        if kind is None:
            raise ConfigError(f"{path}: no 'kind:' key, so its schema is unknown "
                              f"(known kinds: {', '.join(registered_kinds())})")
        cls = kind_class(str(kind))
    elif kind is not None and kind_of(cls) not in (None, kind):
        raise ConfigError(f"{path}: kind is {kind!r} but a {kind_of(cls)!r} config is needed here")
    # The file alone first, so that an error is blamed on the file or on the
    # command-line overrides, whichever introduced it.
    cfg = from_dict(cls, data, source=_Source(str(path), origins))
    if not overrides:
        return cfg
    if any(parse_override(o)[0][0] == "kind" for o in overrides):
        raise ConfigError("override kind=...: the kind of a config cannot be overridden")
    return from_dict(cls, apply_overrides(data, overrides),
                     source=f"{path} with overrides {' '.join(overrides)}")


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>") -> T:
    """Build `cls` from a mapping, checking keys and types; errors name `source`."""
    return _build_dataclass(cls, data, source, prefix="")


def _build_dataclass(cls: type, data: Any, source: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_at(source, where)}: {where}: expected a mapping, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [key for key in data if key not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        valid = ", ".join(fields)
        raise ConfigError(f"{_at(source, f'{prefix}{key}')}: unknown key '{prefix}{key}'{hint}; "
                          f"valid keys here: {valid}")
    kwargs = {}
    for name, value in data.items():
        default = _default_of(fields[name])
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            # A section given in part keeps the rest of *this field's* default, which
            # may differ from its class's defaults (a family's own data section).
            value = deep_merge(_plain(default), value)
        kwargs[name] = _convert(hints[name], value, source, f"{prefix}{name}")
    missing = [
        name for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{_at(source, where)}: missing required key '{prefix}{missing[0]}'")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as error:
        # __post_init__ validation: say which file and section it concerns.
        raise ConfigError(f"{_at(source, where)}: {where}: {error}") from None


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _convert(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, source, key)
            except ConfigError as error:
                errors.append(error)
        raise errors[0] if len(errors) == 1 else _type_error(source, key, tp, value)
    if origin is Literal:
        if value in args:
            return value
        choices = ", ".join(repr(a) for a in args)
        raise ConfigError(f"{_at(source, key)}: {key}: must be one of {choices}, "
                          f"got {_show(value)}")
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, source, f"{key}.")
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(source, key, tp, value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{_at(source, key)}: {key}: expected {len(args)} items, "
                                  f"got {len(value)}")
            items = [_convert(a, v, source, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(item_tp, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise _type_error(source, key, tp, value)
        key_tp, value_tp = args if args else (Any, Any)
        return {
            _convert(key_tp, k, source, key): _convert(value_tp, v, source, f"{key}.{k}")
            for k, v in value.items()
        }
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(source, key, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(source, key, tp, value)
    if tp is float:
        # YAML reads `1e-4` as a string (no dot before the exponent): accept it.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _type_error(source, key, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. an account number or a time written unquoted
        raise _type_error(source, key, tp, value)
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _type_error(source, key, tp, value)
    raise TypeError(f"config type {tp!r} of {key} is not supported by hpc.config")


def _type_error(source: str, key: str, tp: Any, value: Any) -> ConfigError:
    return ConfigError(f"{_at(source, key)}: {key}: expected {_type_name(tp)}, got {_show(value)}")


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "null"


# --------------------------------------------------------------------------- writing


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain data (lists, dicts, scalars) with `kind` first when it is registered."""
    data = _plain(cfg)
    kind = kind_of(type(cfg))
    return {"kind": kind, **data} if kind else data


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config beside a run's outputs, so it can be re-run exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(cfg))
    return path
