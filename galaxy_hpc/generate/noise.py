"""Survey pixel noise for a catalog (GenerateConfig.noise): the per-band target, and each
object's image given the Gaussian noise it lacks against it.

The noise of object i comes from its own stream, SeedSequence([STREAM_NOISE, catalog
seed, i]) beside seeds.py's object and condition streams, so it is the same whichever rank
makes the object, in whatever batch, and when the object is regenerated alone. Only the
target's values decide the bytes: the fingerprint holds them, not the store they were
measured on (a moved store still resumes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from galaxy_hpc.data.pixel_noise import (add_noise, matchable, noise_to_add, pixel_noise,
                                         store_noise)

STREAM_NOISE = 2  # after seeds.STREAM_OBJECT (0) and seeds.STREAM_CONDITION (1)
COLUMN = "noise_added_{band}"  # per band: the sigma added to the object's image


@dataclass(frozen=True)
class SurveyNoise:
    target: np.ndarray  # (C,) pixel noise sigma per band, in the catalog's pixel units
    source: dict[str, Any]  # where the target came from (attributes of the catalog)

    @property
    def columns(self) -> list[str]:
        return [COLUMN.format(band=band) for band in range(len(self.target))]

    def fingerprint(self) -> dict[str, Any]:
        return {"sigma": [float(v) for v in self.target]}

    def apply(self, images: np.ndarray, indices: np.ndarray, catalog_seed: int
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(the images with noise added, in their dtype; the columns of the sigma added
        per band)."""
        added = noise_to_add(pixel_noise(images), self.target)
        out = add_noise(images, added, [[STREAM_NOISE, catalog_seed, index]
                                        for index in np.asarray(indices).tolist()])
        columns = {name: added[:, band] for band, name in enumerate(self.columns)}
        return out.astype(images.dtype), columns


def survey_noise_for(section: Any, image_shape: tuple[int, ...], image_dtype: str
                     ) -> SurveyNoise | None:
    """The catalog's SurveyNoise per its config's noise section (None when off); a match
    store whose images are not in the catalog's pixel units is refused, naming it."""
    from hpc.store import open_store

    if not section.enabled:
        return None
    if not matchable(image_dtype):
        raise ValueError(f"noise: this model draws {image_dtype} images (a stretched composite): "
                         "the survey's noise went through the stretch, and Gaussian noise "
                         "added after it is not the survey's; survey noise is added to float "
                         "(linear flux) catalogs only")
    bands = int(image_shape[0])
    if section.sigma is not None:
        if len(section.sigma) != bands:
            raise ValueError(f"noise.sigma gives {len(section.sigma)} value(s) for images of "
                             f"{bands} band(s): give one per band")
        return SurveyNoise(np.asarray(section.sigma, dtype=np.float64),
                           {"sigma": list(section.sigma)})
    store = open_store(section.match)
    theirs, ours = store.spec.image_shape, tuple(image_shape)
    if theirs[0] != bands:
        raise ValueError(f"noise.match {section.match}: its images have {theirs[0]} band(s), "
                         f"the catalog's {bands}")
    if np.dtype(store.spec.image_dtype).kind != np.dtype(image_dtype).kind:
        raise ValueError(f"noise.match {section.match} holds {store.spec.image_dtype} images, "
                         f"the catalog {image_dtype}: their pixel units differ (give "
                         "noise.sigma in the catalog's units instead)")
    target = store_noise(store, max_images=section.max_images)
    if not np.isfinite(target).all():
        raise ValueError(f"noise.match {section.match}: no pixel noise could be read in band(s) "
                         f"{np.flatnonzero(~np.isfinite(target)).tolist()}")
    return SurveyNoise(target, {"match": str(section.match), "checksum": store.checksum,
                                "max_images": section.max_images,
                                "image_shape": list(theirs),
                                "estimator": "median over images of the robust sigma of first "
                                             "differences along the 3-pixel border ring"})
