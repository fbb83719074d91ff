"""Regenerate one object of a catalog alone, byte for byte.

`galaxy-hpc generate CONFIG --object 123456 --out obj.fits` needs nothing but the config
and the model and condition files: object i depends only on (catalog seed, i). It
recomputes the fixed batch object i was made in (see seeds.py for why the batch, not the
object alone) and keeps object i, then checks the result against the catalog when the
catalog's store is there: the item digest (sha256 of the image bytes and every column
value, as the store's writers computed it) must be the catalog's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.generate.config import GenerateConfig

OUTPUT_ENDINGS = (".npy", ".fits", ".fit")


@dataclass
class ObjectResult:
    index: int
    seed: int
    out: str
    digest: str  # sha256 of the item (image + columns), hex
    catalog_digest: str | None  # the catalog's digest of that item, when the store is there
    matches_catalog: bool | None
    row: dict[str, Any]  # the object's catalog row

    def summary(self) -> str:
        check = {None: "no finalized catalog at the config's out to compare with",
                 True: "identical to the catalog's object",
                 False: "DIFFERS from the catalog's object"}[self.matches_catalog]
        return f"object {self.index} (seed {self.seed}) written to {self.out}: {check}"


def regenerate_object(cfg: GenerateConfig, index: int, out: str | Path) -> ObjectResult:
    from galaxy_hpc.generate.catalog import fingerprint_differences
    from galaxy_hpc.generate.hashing import model_hashes
    from galaxy_hpc.generate.job import build_catalog
    from galaxy_hpc.generate.seeds import batch_of
    from hpc.store import item_digests
    from hpc.store.items import coerce_items

    out = Path(out)
    if not out.name.lower().endswith(OUTPUT_ENDINGS):
        raise ValueError(f"--out {out}: write the object as .npy (the image array) or .fits "
                         "(an image HDU with its catalog row in the header)")
    catalog = build_catalog(cfg)
    catalog.model_hashes = model_hashes(catalog.generator.identity().get("files", {}))
    stored = _catalog_store(cfg.out)
    if stored is not None:
        theirs = (stored.attrs.get("generate") or {}).get("fingerprint")
        diffs = fingerprint_differences(theirs, catalog.fingerprint()) if theirs else ["?"]
        if diffs:
            raise ValueError(f"{cfg.out} was made from another config ({'; '.join(diffs[:4])}); "
                             "regenerate with the catalog's own config")
    batch = batch_of(index, cfg.shard_size, cfg.batch_size, catalog.num_objects)
    images, columns = catalog.make(batch)
    k = int(index - batch[0])
    image = images[k:k + 1]
    row = {name: values[k:k + 1] for name, values in columns.items()}
    spec = catalog.spec()
    image, row = coerce_items(spec, image, row)
    digest = bytes(item_digests(spec, image, row)[0]).hex()
    theirs = bytes(stored.read_item_digests()[index]).hex() if stored is not None else None
    plain = {name: _plain(values[0]) for name, values in row.items()}
    _write(out, image[0], plain)
    return ObjectResult(index=index, seed=int(plain["seed"]), out=str(out), digest=digest,
                        catalog_digest=theirs,
                        matches_catalog=None if theirs is None else theirs == digest, row=plain)


def _catalog_store(path: str) -> Any:
    from hpc.store import open_store

    if not Path(path).exists():
        return None
    try:
        return open_store(path)
    except ValueError:  # not finalized yet: nothing to compare with
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write(out: Path, image: np.ndarray, row: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.name.lower().endswith(".npy"):
        np.save(out, image)
        return
    from astropy.io import fits

    hdu = fits.PrimaryHDU(image)
    hdu.header["EXTNAME"] = "OBJECT"
    hdu.header["ROWJSON"] = json.dumps(row, sort_keys=True)
    for key in ("index", "seed", "sampler", "num_steps", "guidance_scale", "strength"):
        value = row[key]
        if isinstance(value, float) and value != value:
            continue  # FITS header values cannot be NaN
        hdu.header[key.upper()[:8]] = value
    hdu.writeto(out, overwrite=True)
