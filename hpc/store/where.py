"""A row filter over a store's columns: `redshift < 0.1 and label in ['merging']`.

Users write the filter on a command line, so it reads as Python but is never run as
Python: the text is parsed with `ast` and only these forms are evaluated, on whole
columns at once (numpy):

- column names, numbers, strings, True/False, lists or tuples of constants;
- arithmetic `+ - * /` and unary minus between numbers and numeric columns;
- comparisons `== != < <= > >=` (chains too: `0.02 < redshift <= 0.1`), `in` and
  `not in` a list;
- `and`, `or`, `not`, parentheses;
- the functions finite(x), isnan(x), abs(x), log10(x), and contains(text, 'word')
  (a text column holds the word, any case: caption tags).

A comparison with NaN is false (numpy's rule), so `redshift < 0.1` already leaves out
rows of unknown redshift; `not finite(redshift)` picks exactly those. Anything else (an
attribute, a call of another function, a column that does not exist, text compared
with a number) is an error that names it, before any row is written.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "finite": np.isfinite, "isnan": np.isnan, "abs": np.abs, "log10": np.log10,
}  # and contains(text, word), which takes two arguments (_Evaluator.contains)


class WhereError(ValueError):
    """The filter cannot be evaluated (one line for the CLI, naming the part at fault)."""


def columns_named(expression: str) -> list[str]:
    """The column names the filter reads, in order of first use (raises WhereError when
    it does not parse)."""
    tree = _parse(expression)
    functions = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    found = sorted((node.lineno, node.col_offset, node.id) for node in ast.walk(tree)
                   if isinstance(node, ast.Name) and id(node) not in functions)
    return list(dict.fromkeys(name for _, _, name in found))


def select_rows(expression: str, columns: Mapping[str, np.ndarray], num_rows: int
                ) -> np.ndarray:
    """(num_rows,) bool: the rows where the filter holds. `columns` holds (at least) every
    column the filter names."""
    tree = _parse(expression)
    result = _Evaluator(columns, num_rows, expression).value(tree.body)
    result = np.asarray(result)
    if result.dtype != bool:
        raise WhereError(f"--where {expression!r} gives {result.dtype} values, not true or "
                         f"false per row: compare it with something (e.g. `> 0`)")
    return np.broadcast_to(result, (num_rows,)).copy()


def select_from(expression: str, available: Sequence[str],
                read: Callable[[str], np.ndarray], num_rows: int) -> np.ndarray:
    """select_rows reading only the columns the filter names (`read(name)`), once they
    are known to be among `available` (a store's columns)."""
    names = columns_named(expression)
    missing = [name for name in names if name not in available]
    if missing:
        raise WhereError(f"--where {expression!r}: no column {missing[0]!r} (columns: "
                         f"{', '.join(available)})")
    return select_rows(expression, {name: read(name) for name in names}, num_rows)


def _parse(expression: str) -> ast.Expression:
    if not expression.strip():
        raise WhereError("--where is empty: give a condition on the columns, e.g. "
                         "'redshift < 0.1'")
    try:
        return ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise WhereError(f"--where {expression!r} does not parse: {error.msg}") from None


class _Evaluator:
    def __init__(self, columns: Mapping[str, np.ndarray], num_rows: int, text: str) -> None:
        self.columns = columns
        self.num_rows = num_rows
        self.text = text

    def fail(self, node: ast.AST, why: str) -> WhereError:
        part = ast.get_source_segment(self.text.strip(), node) or ast.dump(node)
        return WhereError(f"--where {self.text!r}: {why} ({part!r})")

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (bool, int, float, str)):
                return node.value
            raise self.fail(node, "only numbers, strings, True and False may appear")
        if isinstance(node, ast.Name):
            if node.id not in self.columns:
                known = ", ".join(sorted(self.columns)) or "none"
                raise self.fail(node, f"no column {node.id!r} in the store (columns: {known})")
            return np.asarray(self.columns[node.id])
        if isinstance(node, (ast.List, ast.Tuple)):
            values = [self.value(item) for item in node.elts]
            if any(isinstance(v, np.ndarray) for v in values):
                raise self.fail(node, "a list may hold only constants")
            return values
        if isinstance(node, ast.BoolOp):
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            parts = [self.boolean(v) for v in node.values]
            out = parts[0]
            for part in parts[1:]:
                out = combine(out, part)
            return out
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return np.logical_not(self.boolean(node.operand))
            if isinstance(node.op, (ast.USub, ast.UAdd)):
                operand = self.number(node.operand)
                return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            left, right = self.number(node.left), self.number(node.right)
            with np.errstate(divide="ignore", invalid="ignore"):
                return _ARITHMETIC[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, "not a form a filter may use (columns, constants, arithmetic, "
                              "comparisons, in, and/or/not, finite/isnan/abs/log10/contains)")

    def boolean(self, node: ast.AST) -> Any:
        value = self.value(node)
        if np.asarray(value).dtype != bool:
            raise self.fail(node, "not true or false: compare it with something")
        return value

    def number(self, node: ast.AST) -> Any:
        value = self.value(node)
        array = np.asarray(value)
        if isinstance(value, list) or array.dtype.kind not in "iuf":
            raise self.fail(node, "arithmetic needs numbers or numeric columns")
        return value

    def compare(self, node: ast.Compare) -> Any:
        result: Any = True
        left = self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.value(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, list):
                    raise self.fail(right_node, "`in` needs a list, e.g. ['a', 'b']")
                self._same_kind(node, left, right)
                held = np.isin(left, np.asarray(right, dtype=object if _is_text(left)
                                                else None))
                if isinstance(op, ast.NotIn):
                    held = np.logical_not(held)
            elif type(op) in _COMPARE:
                if isinstance(left, list) or isinstance(right, list):
                    raise self.fail(node, "a list can only follow `in`")
                self._same_kind(node, left, [right])
                with np.errstate(invalid="ignore"):
                    held = _COMPARE[type(op)](left, right)
            else:
                raise self.fail(node, "not a comparison a filter may use")
            result = np.logical_and(result, held)
            left = right
        return result

    def _same_kind(self, node: ast.AST, left: Any, rights: list[Any]) -> None:
        for right in rights:
            if _is_text(left) != _is_text(right):
                raise self.fail(node, "text compared with a number")

    def call(self, node: ast.Call) -> Any:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "contains":
            return self.contains(node)
        if name not in _FUNCTIONS:
            raise self.fail(node, f"only the functions {', '.join(_FUNCTIONS)}, contains "
                                  "may be called")
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, f"{name}() takes one argument")
        argument = self.number(node.args[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            return _FUNCTIONS[name](np.asarray(argument, dtype=np.float64))

    def contains(self, node: ast.Call) -> Any:
        if len(node.args) != 2 or node.keywords:
            raise self.fail(node, "contains() takes a text column and a word: "
                                  "contains(caption, 'merger')")
        values, word = self.value(node.args[0]), self.value(node.args[1])
        if not _is_text(values) or isinstance(values, (str, list)) or not isinstance(word, str):
            raise self.fail(node, "contains() takes a text column and a word: "
                                  "contains(caption, 'merger')")
        return contains_word(values, word)


def contains_word(values: Any, word: str) -> np.ndarray:
    """Whether each text value holds `word`, any case (caption tags)."""
    strings = np.asarray(values, dtype=np.dtypes.StringDType())
    return np.strings.find(np.strings.lower(strings), word.lower()) >= 0


def _is_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    array = np.asarray(value)
    return array.dtype.kind in "USOT"  # T: numpy's StringDType, what store columns hold
