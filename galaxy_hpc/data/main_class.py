"""One morphological class per galaxy from its GZ2 vote fractions: what a classifier learns.

The augmentation experiment (does adding generated galaxies help a classifier, above all
on rare classes?) needs mutually exclusive labels, while GZ2 gives soft fractions over a
tree. The classes follow the tree's first branches by majority, as the GZ2 papers'
"clean" samples do (Willett et al. 2013, section 7), but without dropping uncertain
galaxies, so every galaxy gets a class:

    Q1 star or artifact wins          -> artifact
    Q1 smooth wins                    -> smooth
    Q1 features or disk wins, then
        Q2 edge-on: yes wins          -> edge_on
        Q4 spiral: spiral wins        -> spiral
        otherwise                     -> disk

Ties go to the first answer in Kaggle order (as the captioner does).

Stores that carry captions but no fractions (a catalog generated from text prompts)
get the same classes from their caption's phrases (`caption_classes`): the captioner
writes "star or artifact", "edge-on galaxy", "spiral galaxy" exactly when those answers
win, and smooth galaxies carry "smooth", "elliptical galaxy" or a roundness phrase.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from galaxy_hpc.data.gz2 import ANSWERS, NUM_ANSWERS, column_name

MAIN_CLASSES = ("smooth", "disk", "spiral", "edge_on", "artifact")
# Text columns holding each galaxy's class by name (class folders, Galaxy10's named codes),
# looked for in this order: the report's grids read them, generated catalogs carry them.
CLASS_COLUMNS = ("class", "label")


def _index(code: str) -> int:
    return next(a.index for a in ANSWERS if a.code == code)


_A = {code: _index(code) for code in ("a01", "a02", "a03", "a04", "a05", "a08", "a09")}


def main_classes(fractions: np.ndarray) -> np.ndarray:
    """(N, 37) per-question fractions (Kaggle order) -> (N,) class names (MAIN_CLASSES)."""
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != NUM_ANSWERS:
        raise ValueError(f"expected (N, {NUM_ANSWERS}) vote fractions, got shape {f.shape}")
    q1 = np.argmax(f[:, [_A["a01"], _A["a02"], _A["a03"]]], axis=1)
    # ">=" with "> 0": a tie goes to the first answer, a question nobody reached to "no".
    edge_on = (f[:, _A["a04"]] >= f[:, _A["a05"]]) & (f[:, _A["a04"]] > 0)
    spiral = (f[:, _A["a08"]] >= f[:, _A["a09"]]) & (f[:, _A["a08"]] > 0)
    disk_class = np.where(edge_on, "edge_on", np.where(spiral, "spiral", "disk"))
    out = np.where(q1 == 0, "smooth", np.where(q1 == 2, "artifact", disk_class))
    return out.astype(object)


_CAPTION_RULES = (  # the first rule whose phrase is a tag of the caption decides
    ("artifact", ("star or artifact",)),
    ("edge_on", ("edge-on galaxy",)),
    ("spiral", ("spiral galaxy",)),
    ("smooth", ("smooth", "elliptical galaxy", "completely round galaxy",
                "in-between round galaxy", "cigar shaped galaxy")),
)


def caption_classes(captions: np.ndarray | list[str]) -> np.ndarray:
    """(N,) GalaxySD-style captions -> (N,) class names; a caption naming none of the
    phrases above (a featured disk that is neither edge-on nor spiral) is a disk."""
    out = []
    for caption in captions:
        tags = {t.strip().lower() for t in str(caption).split(",")}
        out.append(next((name for name, phrases in _CAPTION_RULES
                         if any(p in tags for p in phrases)), "disk"))
    return np.array(out, dtype=object)


def fractions_from_columns(columns: Mapping[str, np.ndarray], where: str) -> np.ndarray:
    """(N, 37) from a table holding the 37 `<gz2 stem>_fraction` columns (as stores made by
    ingest and synth do); `where` names the table in the error."""
    names = [column_name(a, "fraction") for a in ANSWERS]
    missing = [n for n in names if n not in columns]
    if missing:
        raise ValueError(f"{where}: no GZ2 vote fraction columns ({len(missing)} of 37 missing, "
                         f"e.g. {missing[0]!r}); name a label column instead")
    return np.stack([np.asarray(columns[n], dtype=np.float64) for n in names], axis=1)
