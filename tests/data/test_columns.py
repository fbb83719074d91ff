"""The column registry (units, descriptions) and the FITS cards made from it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from galaxy_hpc.data.columns import (
    DESCRIBED_MAX,
    DESCRIPTION_MAX,
    ColumnInfo,
    column_info,
    condition_info,
    predicted_info,
    store_column_info,
)
from galaxy_hpc.data.fits_header import put, write_fits_table
from galaxy_hpc.data.gz2 import ANSWERS, SUFFIXES, column_name
from galaxy_hpc.data.synth import TRUTH_COLUMNS


def test_synthetic_truth_has_its_units():
    units = {name: column_info(name).unit for name in TRUTH_COLUMNS}
    assert units == {"redshift": "", "log_stellar_mass": "log(solMass)",
                     "half_light_radius_arcsec": "arcsec", "bulge_fraction": "",
                     "bulge_sersic_n": "", "disk_axis_ratio": "",
                     "position_angle_deg": "deg", "inclination_deg": "deg"}
    assert all(column_info(name).description for name in TRUTH_COLUMNS)
    flux = column_info("flux_g")
    assert flux.unit == "nanomaggy" and "g-band" in flux.description


def test_every_gz2_column_is_described_with_its_question_and_answer():
    for answer in ANSWERS:
        for suffix in SUFFIXES:
            info = column_info(column_name(answer, suffix))
            assert f"'{answer.text}'" in info.description, (answer, suffix)
        fraction = column_info(column_name(answer))
        assert fraction.unit == "" and f"Q{answer.question} " in fraction.description
    assert column_info("t01_smooth_or_features_a01_smooth_count").unit == "count"
    assert column_info("t02_edgeon_a04_yes_flag").unit is None
    assert column_info("Class2.1") == ColumnInfo("", "Q2 edgeon share of all votes for 'yes'")
    assert column_info("T02_EDGEON_A04_YES_FRACTION") == column_info("t02_edgeon_a04_yes_fraction")


def test_descriptions_fit_one_card_with_their_prefixes():
    names = [column_name(a, s) for a in ANSWERS for s in SUFFIXES] + [a.kaggle for a in ANSWERS]
    names += [*TRUTH_COLUMNS, "flux_u", "id", "index", "seed", "model_hash", "sampler",
              "num_steps", "guidance_scale", "strength", "source_row", "source_id",
              "rare_class", "caption", "source", "crop_size", "total_flux", "half_light_radius"]
    for name in names:
        info = column_info(name)
        assert len(info.description) <= DESCRIPTION_MAX, name
        for made in (predicted_info(name), condition_info(name, carried=True),
                     condition_info(name, carried=False)):
            assert len(made.description) <= DESCRIBED_MAX, (name, made.description)


def test_unknown_columns_get_nothing_and_user_values_no_convention_units():
    assert column_info("mystery") == ColumnInfo()
    assert column_info("size_arcsec") == ColumnInfo("arcsec", None)  # the name says the unit
    assert column_info("flux_r", ours=False) == ColumnInfo()  # a user's flux may be in Jy
    assert column_info("redshift", ours=False).unit == ""
    assert store_column_info(["id", "mystery", "flux_r"], ours=False) == {
        "id": {"description": "object id"}}
    info = store_column_info(["id", "redshift"], overrides={"id": ColumnInfo(None, "mine")})
    assert info == {"id": {"description": "mine"},
                    "redshift": {"unit": "", "description": "redshift of the galaxy"}}


def test_conditions_prefer_the_source_stores_own_description():
    assert condition_info("redshift", carried=False).description.startswith("condition: ")
    assert condition_info("mystery", carried=True) == ColumnInfo(
        None, "copied from the condition source row")
    given = condition_info("flux_r", carried=True,
                           source={"unit": "nanomaggy", "description": "true flux"})
    assert given == ColumnInfo("nanomaggy", "source row: true flux")


@pytest.mark.parametrize("value", ["sha256:" + "0" * 64, "it's " * 30 + "end", "x" * 60])
def test_string_cards_too_long_for_their_comment_become_long_strings(value):
    header = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        put(header, "LONGKEY", value, "a comment that must not be cut short")
        put(header, "NUMBER", 3, "a short one")
    again = fits.Header.fromstring(header.tostring())
    assert again["LONGKEY"] == value
    assert again.comments["LONGKEY"] == "a comment that must not be cut short"
    assert again.comments["NUMBER"] == "a short one"
    with pytest.raises(ValueError, match="needs a comment"):
        put(header, "EMPTY", 1, "")
    with pytest.raises(ValueError, match="does not fit"):
        put(header, "NUMBER", 1, "x" * 60)


def test_fits_table_round_trips_through_astropy(tmp_path):
    table = Table({"redshift": np.array([0.1, 0.2]), "mystery": np.array([1, 2])})
    infos = {"redshift": column_info("redshift")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_fits_table(tmp_path / "t.fits", table, infos,
                                {"NOBJ": (np.int64(2), "number of rows")}, extname="T")
    header = fits.getheader(path, "T")
    assert header["TUNIT1"] == "" and header["TCOMM1"] == "redshift of the galaxy"
    assert "TUNIT2" not in header and "TCOMM2" not in header and header["NOBJ"] == 2
    read = Table.read(path)
    assert read["redshift"].description == "redshift of the galaxy"
    assert read["redshift"].tolist() == [0.1, 0.2] and read["mystery"].tolist() == [1, 2]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
