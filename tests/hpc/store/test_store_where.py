"""The row filter of `galaxy-hpc select`: what each form keeps, by hand, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from hpc.store.where import WhereError, columns_named, select_rows

NAN = float("nan")
COLUMNS = {
    "redshift": np.array([0.05, NAN, 0.2, 0.08, 0.12]),
    "mass": np.array([10, 11, 9, 12, 10]),
    "label": np.array(["merging", "disturbed", "merging", "spiral", "smooth"],
                      dtype=np.dtypes.StringDType()),  # what store columns of text hold
}


@pytest.mark.parametrize("where, kept", [
    ("redshift < 0.1", [0, 3]),  # NaN compares false: row 1 is out
    ("not finite(redshift)", [1]),
    ("isnan(redshift) or mass >= 12", [1, 3]),
    ("0.06 < redshift <= 0.2", [2, 3, 4]),  # a chain
    ("label in ['merging', 'smooth'] and redshift < 0.15", [0, 4]),
    ("label not in ('merging',)", [1, 3, 4]),
    ("label == 'spiral'", [3]),
    ("mass - 10 * redshift > 9.5", [3]),  # 9.5, NaN, 7, 11.2, 8.8
    ("log10(mass) > 1.0 and abs(-mass) < 12", [1]),
    ("-redshift > -0.1", [0, 3]),
    ("True", [0, 1, 2, 3, 4]),
    ("contains(label, 'MERG') or contains(label, 'iral')", [0, 2, 3]),  # any case
])
def test_each_form_keeps_the_rows_worked_out_by_hand(where, kept):
    assert np.flatnonzero(select_rows(where, COLUMNS, 5)).tolist() == kept


def test_the_columns_read_are_named_without_the_functions():
    assert columns_named("finite(redshift) and log10(mass) > 1 or label == 'x'") == [
        "redshift", "mass", "label"]


@pytest.mark.parametrize("where, message", [
    ("", "--where is empty"),
    ("redshift <", "does not parse"),
    ("redshift", "gives float64 values, not true or false"),
    ("redshfit < 0.1", "no column 'redshfit' in the store (columns: label, mass, redshift)"),
    ("label > 1", "text compared with a number"),
    ("label in [1, 2]", "text compared with a number"),
    ("mass in mass", "`in` needs a list"),
    ("__import__('os').system('true')", "only the functions finite, isnan, abs, log10"),
    ("redshift.max() > 0", "only the functions finite, isnan, abs, log10"),
    ("contains(mass, 'x')", "contains() takes a text column and a word"),
    ("contains(label)", "contains() takes a text column and a word"),
    ("label + 1 > 0", "arithmetic needs numbers"),
    ("mass < [1]", "a list can only follow `in`"),
    ("[x for x in mass]", "not a form a filter may use"),
    ("finite(redshift, mass)", "finite() takes one argument"),
])
def test_what_is_not_a_filter_is_refused_naming_the_part(where, message):
    with pytest.raises(WhereError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        select_rows(where, COLUMNS, 5)
