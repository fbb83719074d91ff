"""Command-line flags derived from a config dataclass, so that a flag cannot drift from
its field.

Hand-written `add_argument(..., default=64)` beside `batch_size: int = 64` is two
sources of one fact: one of them changes and the other lies, in `--help` or worse in
the run. Here every flag is read off its field: the name (`max_galaxies` ->
`--max-galaxies`), the type (int, float, str, Path, a Literal's choices, a list as
comma-separated items, a bool as `--x/--no-x`), the default and the help (the field's
`metadata["help"]`, else the comment beside or above it in the class's source).

A flag given on the command line becomes a `path=value` override (`config_overrides`),
applied on top of the config file like any other override; a flag not given changes
nothing, so a config file's value is never replaced by a flag's default. The parser's
defaults are the dataclass's, for `--help` and for tests that check that they agree.

Fields of a nested dataclass (a section) get their own name as flag when no other field
has it (`features.extractor` -> `--extractor`), else the dotted path with dashes
(`--features-extractor`). Fields of other types (dicts, unions of several types) have no
flag: `path=value` reaches them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

from hpc.config import _default_of  # a field's default, as configs fill it in

# The namespace attribute listing the config paths whose flags were given, in order.
GIVEN = "config_flags_given"
_SCALARS = (int, float, str, Path)


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One field of a config, as a flag sees it."""

    path: str  # dotted key, as an override names it: "features.extractor"
    tp: Any  # the annotation, resolved
    default: Any
    help: str


def config_fields(cls: type, *, sections: bool = True, prefix: str = "") -> list[FieldInfo]:
    """Every init field of `cls` in order, the fields of nested dataclasses in place of the
    section itself (with `sections`; without, sections are left out)."""
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    found = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            if sections:
                found += config_fields(tp, prefix=f"{prefix}{f.name}.")
            continue
        found.append(FieldInfo(f"{prefix}{f.name}", tp, _default_of(f), helps.get(f.name, "")))
    return found


def field_help(cls: type) -> dict[str, str]:
    """Each field's help: `metadata["help"]`, else its comments in the class's source (the
    lines right above it and the one at its end), joined into one sentence."""
    comments: dict[str, str] = {}
    for owner in reversed(cls.__mro__):  # a subclass's comment wins over its base's
        if dataclasses.is_dataclass(owner):
            comments.update({k: v for k, v in _source_comments(owner).items() if v})
    helps = {}
    for f in dataclasses.fields(cls):
        text = f.metadata.get("help") or comments.get(f.name, "")
        if text:
            helps[f.name] = text
    return helps


def _source_comments(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    by_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            by_line[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, line = [], node.lineno - 1
        while line in by_line and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, by_line[line])
            line -= 1
        beside = by_line.get(node.end_lineno)
        found[node.target.id] = " ".join(above + ([beside] if beside else []))
    return found


# --------------------------------------------------------------------------- flags


class _FieldAction(argparse.Action):
    """Stores the value and notes that the flag was given (see `config_overrides`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        given = getattr(namespace, GIVEN, None)
        if given is None:
            given = []
            setattr(namespace, GIVEN, given)
        if self.dest not in given:
            given.append(self.dest)


class _FieldSwitch(_FieldAction):
    """`--x` sets a bool field, `--no-x` clears it."""

    def __init__(self, option_strings, dest, **kwargs):
        names = [n for s in option_strings for n in (s, "--no-" + s[2:])]
        super().__init__(names, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, not option_string.startswith("--no-"), option_string)


def add_config_flags(parser: argparse.ArgumentParser, cls: type, *,
                     exclude: Iterable[str] = (), sections: bool = True,
                     aliases: Mapping[str, str] | None = None) -> list[argparse.Action]:
    """A flag for every field of `cls` that a flag can hold, except the dotted paths in
    `exclude` (e.g. those given as positionals). `aliases` adds another spelling of a
    field's flag (`{"num_bins": "--bins"}`, a name users already type). Returns the
    actions; each has `dest` equal to the field's dotted path."""
    fields = [f for f in config_fields(cls, sections=sections) if f.path not in set(exclude)]
    short = [f.path.rsplit(".", 1)[-1] for f in fields]
    actions = []
    for info, name in zip(fields, short):
        kind = _argument(info)
        if kind is None:
            continue
        flag = name if short.count(name) == 1 else info.path.replace(".", "-")
        options = [f"--{flag.replace('_', '-')}"]
        if aliases and info.path in aliases:
            options.append(aliases[info.path])
        text = f"{info.help.rstrip('.')} " if info.help else ""
        if _without_none(info.tp)[1] and info.tp is not bool:
            text += "('' for none) "
        text = f"{text}(default: {_show(info.default)})".replace("%", "%%")
        actions.append(parser.add_argument(*options, dest=info.path, default=info.default,
                                           help=text, **kind))
    return actions


def _argument(info: FieldInfo) -> dict[str, Any] | None:
    """add_argument's keywords for the field's type, or None where a flag cannot hold it."""
    tp, optional = _without_none(info.tp)
    if tp is bool:
        return {"action": _FieldSwitch}
    metavar = info.path.rsplit(".", 1)[-1].upper()
    parse = _parser_of(tp)
    if parse is not None:
        keywords: dict[str, Any] = {"action": _FieldAction, "type": _none_or(parse, optional)}
        if typing.get_origin(tp) is Literal:
            keywords["choices"] = list(typing.get_args(tp))
            keywords["metavar"] = "{" + ",".join(map(str, keywords["choices"])) + "}"
        else:
            keywords["metavar"] = metavar
        return keywords
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    listed = origin in (list, Sequence) and len(args) == 1 or \
        origin is tuple and len(args) == 2 and args[1] is Ellipsis
    item = _parser_of(args[0]) if listed else None
    if item is not None:
        return {"action": _FieldAction, "type": _none_or(_comma_list(item), optional),
                "metavar": f"{metavar}[,...]"}
    return None


def _without_none(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0], len(rest) < len(typing.get_args(tp))
    return tp, False


def _parser_of(tp: Any) -> Callable[[str], Any] | None:
    if tp in _SCALARS:
        return tp
    if typing.get_origin(tp) is Literal:
        kinds = {type(a) for a in typing.get_args(tp)}
        return next(iter(kinds)) if len(kinds) == 1 and kinds <= set(_SCALARS) else None
    return None


def _comma_list(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        try:
            return [item(part.strip()) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {getattr(item, '__name__', 'item')}s separated by commas, "
                f"got {text!r}") from None

    parse.__name__ = f"list of {getattr(item, '__name__', 'item')}"
    return parse


def _none_or(parse: Callable[[str], Any], optional: bool) -> Callable[[str], Any]:
    """An optional field's flag takes '' for none."""
    if not optional:
        return parse

    def parse_or_none(text: str) -> Any:
        return None if text == "" else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")
    return parse_or_none


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if value == "":
        return "''"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "empty"
    return str(value)


# --------------------------------------------------------------------------- reading back


def config_overrides(args: argparse.Namespace) -> list[str]:
    """`path=value` for every config flag given on the command line, in the order given;
    values are written as JSON, which the overrides' YAML reads back as they were."""
    return [f"{path}={json.dumps(getattr(args, path), default=str)}"
            for path in getattr(args, GIVEN, None) or ()]


def config_flag_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The actions `add_config_flags` added to `parser` (for help and tests)."""
    return [a for a in parser._actions if isinstance(a, _FieldAction)]
