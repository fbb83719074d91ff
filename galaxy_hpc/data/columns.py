"""What our columns mean: one registry of unit and description per column name or pattern.

Every writer of store columns (synth, ingest, generate) passes these to the store
(`StoreSpec.column_info`), and every FITS table writer turns them into TUNITn/TCOMMn
cards, so that a column means the same in a store, a catalog and a predictions table,
whichever tool opens it. hpc.store only keeps what it is given; the meaning is here.

Units are FITS unit strings (FITS 4.0 section 4.3), which TOPCAT, fitsio and IDL show
as written:

- "" is dimensionless, known to be so (redshift, ratios, vote fractions); a column with
  no unit at all (None) is one where a unit does not apply or is not known (ids, indices,
  flags, image-unit fluxes).
- log stellar mass is "log(solMass)": log() is the FITS standard's base-10 logarithm
  function and solMass its solar mass. astropy's FITS unit parser supports no function
  units at all (astropy 8: "Function units are not yet supported for FITS units"), so
  `Table.read` keeps it as an UnrecognizedUnit with a UnitsWarning; astropy's own
  "dex(solMass)" is worse, since astropy refuses to write it as TUNITn (a FITS reader
  would see no unit) and it is no FITS unit either.
- fluxes are "nanomaggy", the SDSS / Legacy Surveys unit (1 nmgy = 22.5 AB mag =
  3.631 uJy) that astropy's generic parser knows; FITS has no exact equivalent, since
  its unit scale factors must be powers of 10.

A name states its unit only where the name fixes it (redshift, *_arcsec, *_deg, the GZ2
vote columns). Units that are our own convention rather than implied by the name
(flux_<band> in nanomaggies) apply only to values we computed (`ours=True`); for values
copied from a user's table (`ours=False`) such a column gets no unit rather than a
possibly wrong one. Unknown names get nothing.

Descriptions stay within DESCRIPTION_MAX characters, prefixed ones ("predicted ...")
within DESCRIBED_MAX: then `TCOMMn = '...' / field n` fits one 80-character card and
needs no CONTINUE cards, which some table readers do not join for column keywords.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from galaxy_hpc.data.gz2 import GZ2_TREE, Answer, parse_column

DESCRIPTION_MAX = 44  # of a registry description
DESCRIBED_MAX = 56  # with a prefix: "TCOMM123= '<56>' / field 123" is 80 characters
PREDICTED = "predicted "
CONDITION = "condition: "
SOURCE_ROW = "source row: "


@dataclass(frozen=True)
class ColumnInfo:
    unit: str | None = None  # FITS unit string; "" dimensionless; None: none applies/known
    description: str | None = None
    ours_only: bool = False  # the unit is our convention, not implied by the name

    def as_dict(self) -> dict[str, str]:
        """The store's form (StoreSpec.column_info): only what is known."""
        return {key: value for key, value in (("unit", self.unit),
                                               ("description", self.description))
                if value is not None}

    def prefixed(self, prefix: str) -> "ColumnInfo":
        text = self.description
        return ColumnInfo(self.unit, prefix + text if text else None, self.ours_only)


NONE = ColumnInfo()
# ids whose writer says how they are made (overrides of the generic "object id")
SYNTH_ID = ColumnInfo(None, "synth-<seed>-<index>, made from those alone")
GENERATED_ID = ColumnInfo(None, "gen-<catalog seed>-<index>")

_EXACT: dict[str, ColumnInfo] = {
    # identifiers and provenance (galaxy_hpc.generate.catalog, data.ingest)
    "id": ColumnInfo(None, "object id"),
    "index": ColumnInfo(None, "object index in the catalog (store item)"),
    "seed": ColumnInfo(None, "torch seed of the object (latents, noise)"),
    "model_hash": ColumnInfo(None, "sha256 over the model files' MODSHAn, 16 hex"),
    "sampler": ColumnInfo(None, "diffusion sampler (none: no sampling)"),
    "num_steps": ColumnInfo(None, "sampler steps (img2img: steps * strength)"),
    "guidance_scale": ColumnInfo("", "classifier-free guidance scale (1: none)"),
    "strength": ColumnInfo("", "img2img noise strength (1: text-to-image)"),
    "source_row": ColumnInfo(None, "row of the condition source this object used"),
    "source_id": ColumnInfo(None, "id of that row in the condition source"),
    "rare_class": ColumnInfo(None, "source row has a rare (oversampled) class"),
    "caption": ColumnInfo(None, "text caption (the text condition)"),
    "source": ColumnInfo(None, "file (and HDU or row) the image came from"),
    "crop_size": ColumnInfo("pix", "side of the centred crop, in source pixels"),
    "nonfinite_pixels": ColumnInfo(None, "NaN or infinite values in the stored image"),
    # synthetic truth (data.synth.physics, data.synth.population)
    "redshift": ColumnInfo("", "redshift of the galaxy"),
    "log_stellar_mass": ColumnInfo("log(solMass)", "log10 of the stellar mass in solar masses"),
    "half_light_radius_arcsec": ColumnInfo("arcsec", "circularized half-light radius, pre-PSF"),
    "bulge_fraction": ColumnInfo("", "r-band bulge-to-total flux ratio"),
    "bulge_sersic_n": ColumnInfo("", "Sersic index of the bulge"),
    "disk_axis_ratio": ColumnInfo("", "projected disk axis ratio, minor/major"),
    "position_angle_deg": ColumnInfo("deg", "major axis angle, CCW from the image +x axis"),
    "inclination_deg": ColumnInfo("deg", "disk inclination, 0 face-on, 90 edge-on"),
    # model-free photometry (data.photometry): in the images' own units and pixels
    "total_flux": ColumnInfo(None, "sky-subtracted flux in 4 R_e (image units)", True),
    "half_light_radius": ColumnInfo("pix", "radius holding half of total_flux", True),
}

# (pattern, function of the match): names that state their unit, and families of columns
_PATTERNS: tuple[tuple[re.Pattern, object], ...] = (
    (re.compile(r"^flux_([ugriz])$"),
     lambda m: ColumnInfo("nanomaggy", f"true total {m[1]}-band flux (1 nmgy = 22.5 AB)", True)),
    (re.compile(r"^.+_arcsec$"), lambda m: ColumnInfo("arcsec", None)),
    (re.compile(r"^.+_deg$"), lambda m: ColumnInfo("deg", None)),
)

# GZ2 catalog suffixes (data.gz2.SUFFIXES; None: Kaggle's ClassN.M) -> unit, wording
_GZ2_WORDING: dict[str | None, tuple[str | None, str]] = {
    "count": ("count", "votes for"),
    "weight": ("", "weighted votes for"),
    "fraction": ("", "vote share for"),
    "weighted_fraction": ("", "weighted share for"),
    "debiased": ("", "debiased share for"),
    "flag": (None, "GZ2 flag for"),
    None: ("", "share of all votes for"),  # Kaggle's cumulative values
}


def _gz2(answer: Answer, suffix: str | None) -> ColumnInfo:
    """'Q2 edgeon vote share for 'yes'': the question's slug where it fits, because an
    answer such as 'yes' says nothing alone; fractions are per question (gz2.py)."""
    unit, wording = _GZ2_WORDING[suffix]
    slug = GZ2_TREE.question(answer.question).slug
    for text in (f"Q{answer.question} {slug} {wording} '{answer.text}'",
                 f"Q{answer.question} {wording} '{answer.text}'"):
        if len(text) <= DESCRIPTION_MAX:
            return ColumnInfo(unit, text)
    return ColumnInfo(unit, f"{wording} '{answer.text}'")


def column_info(name: str, *, ours: bool = True) -> ColumnInfo:
    """Unit and description of a column named `name` (NONE when unknown). Case does not
    matter (FITS writers upper-case names). `ours=False` for values copied from a user's
    table: units that are only our convention are left out (see the module docstring)."""
    key = name.strip().lower()
    found = _EXACT.get(key)
    if found is None:
        try:
            found = _gz2(*parse_column(key))
        except ValueError:
            found = next((make(m) for pattern, make in _PATTERNS
                          if (m := pattern.match(key))), NONE)
    return NONE if found.ours_only and not ours else found


def store_column_info(columns, *, ours: bool = True,
                      overrides: dict[str, ColumnInfo] | None = None) -> dict[str, dict]:
    """`StoreSpec.column_info` for these column names: the registry's, or `overrides`
    where a writer knows better (synth's ids say how they are made)."""
    overrides = overrides or {}
    infos = {name: overrides.get(name) or column_info(name, ours=ours) for name in columns}
    return {name: info.as_dict() for name, info in infos.items() if info.as_dict()}


def predicted_info(column: str) -> ColumnInfo:
    """A model's prediction of `column` (e.g. a GZ2 vote share): its unit, and its
    description marked as predicted."""
    return column_info(column).prefixed(PREDICTED)


def condition_info(name: str, *, carried: bool, source: dict | None = None) -> ColumnInfo:
    """A generated catalog's copy of a condition source column: what the model was given
    (`carried=False`), or a value of the source row carried along for evaluation (e.g.
    the real galaxy's GZ2 vote shares; `carried=True`). `source`: the unit and
    description the source store itself gives the column, which win over the registry."""
    source = source or {}
    known = column_info(name, ours=False)
    info = ColumnInfo(source.get("unit", known.unit),
                      source.get("description", known.description))
    if info.description is None:
        return ColumnInfo(info.unit, "copied from the condition source row" if carried
                          else "condition given to the model")
    return info.prefixed(SOURCE_ROW if carried else CONDITION)
