"""The catalog as a FITS table beside its store, with the provenance in the header.

One row per object, every store column, in store order (row k is store item k). Written
by rank 0 from the finalized store, to a hidden name renamed into place, so the file on
disk is always whole and always agrees with the store it names (STORESUM = its
checksum). The header holds short keywords astronomers can read with any FITS tool and,
in PROVJSON (long-string CONTINUE cards), the store's whole provenance as JSON.

Each column carries the unit and description its store column has (given at creation
from galaxy_hpc.data.columns) as TUNITn / TCOMMn, and every card a comment: see
galaxy_hpc.data.fits_header for how they are laid out.

Strings are stored as UTF-8 bytes (FITS 'A' columns are byte strings; astropy reads
ASCII ones back as text). An empty string reads back as a masked cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_hpc.data.columns import ColumnInfo, column_info


def write_catalog_table(store: Any, path: str | Path) -> Path:
    from astropy.table import Column, Table

    from galaxy_hpc.data.fits_header import write_fits_table

    table = Table()
    infos: dict[str, ColumnInfo] = {}
    for name in store.columns:
        values = store.read_column(name)
        if store.spec.columns[name] == "str":
            values = np.array([str(v).encode("utf-8") for v in values.tolist()], dtype=bytes)
            if values.dtype.itemsize == 0:  # all empty: FITS needs a width of at least 1
                values = values.astype("S1")
        table[name] = Column(values)
        infos[name] = _info(store, name)
    return write_fits_table(path, table, infos, header_cards(store), extname="CATALOG")


def _info(store: Any, name: str) -> ColumnInfo:
    """The store's own unit and description; for a store written before stores kept
    them, the registry's, as for values we did not compute (no convention-only units)."""
    stored = store.column_info(name)
    if stored:
        return ColumnInfo(stored.get("unit"), stored.get("description"))
    return column_info(name, ours=False)


def header_cards(store: Any) -> dict[str, tuple[Any, str]]:
    """key -> (value, comment); cards whose value is unknown are left out."""
    attrs = store.attrs
    generate = attrs.get("generate", {})
    fingerprint = generate.get("fingerprint", {})
    model = fingerprint.get("model", {})
    sampler = fingerprint.get("sampler") or {}
    runtime = generate.get("runtime", {})
    conditions = generate.get("conditions", {})
    cards: dict[str, tuple[Any, str]] = {
        "ORIGIN": (f"galaxy-hpc {attrs.get('galaxy_hpc_version', '')}".strip(),
                   "software that wrote this file"),
        "NOBJ": (len(store), "number of objects (rows)"),
        "SEED": (fingerprint.get("seed"), "catalog seed: object i depends on (SEED, i)"),
        "STORE": (Path(store.path).name, "store of the images (row k = item k)"),
        "STORESUM": (store.checksum, "content checksum of that store"),
        "MODKIND": (model.get("kind"), "model kind"),
        "MODCLASS": (model.get("class"), "model class"),
        "SAMPLER": (sampler.get("name", "none"), "diffusion sampler (none: no sampling)"),
        "NSTEPS": (sampler.get("steps", 0), "sampler steps"),
        "GUIDANCE": (sampler.get("guidance_scale", 0.0), "classifier-free guidance scale"),
        "ETA": (sampler.get("eta", 0.0), "sampler eta (DDIM noise)"),
        "PRECISN": (fingerprint.get("precision"), "compute precision"),
        "DEVICE": (runtime.get("device"), "device of rank 0"),
        "CONDSRC": (conditions.get("kind"), "kind of condition source"),
        "CONDPATH": (conditions.get("path"), "condition source"),
        "CONDSUM": (conditions.get("sha256") or conditions.get("checksum"),
                    "sha256 or store checksum of the condition source"),
        "TORCHVER": (runtime.get("torch"), "torch version"),
        "DIFFVER": (runtime.get("diffusers"), "diffusers version"),
    }
    for number, (role, digest) in enumerate(sorted(model.get("sha256", {}).items())):
        cards[f"MODROLE{number}"] = (role, f"model file(s) hashed in MODSHA{number}")
        cards[f"MODSHA{number}"] = (digest, f"sha256 of the model's {role} (file or folder)")
    if "lora_scale" in model:
        cards["LORASCAL"] = (model["lora_scale"], "LoRA scale")
    if "img2img" in conditions:
        cards["STRENGTH"] = (conditions["img2img"]["strength"], "img2img noise strength")
    cards["PROVJSON"] = (json.dumps(attrs, sort_keys=True, separators=(",", ":")),
                         "the store's whole provenance, as JSON")
    return {key: card for key, card in cards.items() if card[0] is not None}
