"""The catalog as a FITS table beside its store, with the provenance in the header.

One row per object, every store column, in store order (row k is store item k). Written
by rank 0 from the finalized store, to a hidden name renamed into place, so the file on
disk is always whole and always agrees with the store it names (STORESUM = its
checksum). The header holds short keywords astronomers can read with any FITS tool and,
in PROVJSON (long-string CONTINUE cards), the store's whole provenance as JSON.

Strings are stored as UTF-8 bytes (FITS 'A' columns are byte strings; astropy reads
ASCII ones back as text). An empty string reads back as a masked cell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

_COMMENTS = {
    "id": "gen-<catalog seed>-<index>",
    "index": "object index in the catalog (the store item)",
    "seed": "torch seed of the object (latents and sampler noise)",
    "model_hash": "first 16 hex of sha256 over the model files' sha256 (see MODELSHA*)",
    "sampler": "diffusion sampler (none: the model does not sample)",
    "num_steps": "sampler steps (img2img runs int(steps * strength) of them)",
    "guidance_scale": "classifier-free guidance scale (1: none)",
    "strength": "img2img noise strength (1: text-to-image)",
    "source_row": "row of the condition source this object used",
    "source_id": "id of that row in the condition source",
    "caption": "text condition",
    "rare_class": "the source row carries a rare (oversampled) class",
}


def write_catalog_table(store: Any, path: str | Path) -> Path:
    from astropy.table import Column, Table

    path = Path(path)
    table = Table()
    for name in store.columns:
        values = store.read_column(name)
        if store.spec.columns[name] == "str":
            values = np.array([str(v).encode("utf-8") for v in values.tolist()], dtype=bytes)
            if values.dtype.itemsize == 0:  # all empty: FITS needs a width of at least 1
                values = values.astype("S1")
        table[name] = Column(values, description=_COMMENTS.get(name, "condition"))
    for key, value in header_cards(store).items():
        table.meta[key] = value
    tmp = path.with_name(f".{path.name}.writing-{os.getpid()}")
    try:
        table.write(tmp, format="fits", overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def header_cards(store: Any) -> dict[str, Any]:
    attrs = store.attrs
    generate = attrs.get("generate", {})
    fingerprint = generate.get("fingerprint", {})
    model = fingerprint.get("model", {})
    sampler = fingerprint.get("sampler") or {}
    runtime = generate.get("runtime", {})
    conditions = generate.get("conditions", {})
    cards: dict[str, Any] = {
        "EXTNAME": "CATALOG",
        "ORIGIN": f"galaxy-hpc {attrs.get('galaxy_hpc_version', '')}".strip(),
        "NOBJ": len(store),
        "SEED": fingerprint.get("seed"),
        "STORE": Path(store.path).name,
        "STORESUM": store.checksum,
        "MODKIND": model.get("kind"),
        "MODCLASS": model.get("class"),
        "SAMPLER": sampler.get("name", "none"),
        "NSTEPS": sampler.get("steps", 0),
        "GUIDANCE": sampler.get("guidance_scale", 0.0),
        "ETA": sampler.get("eta", 0.0),
        "PRECISN": fingerprint.get("precision"),
        "DEVICE": runtime.get("device"),
        "CONDSRC": conditions.get("kind"),
        "CONDPATH": conditions.get("path"),
        "CONDSUM": conditions.get("sha256") or conditions.get("checksum"),
        "TORCHVER": runtime.get("torch"),
        "DIFFVER": runtime.get("diffusers"),
    }
    for number, (role, digest) in enumerate(sorted(model.get("sha256", {}).items())):
        cards[f"MODROLE{number}"] = role
        cards[f"MODSHA{number}"] = digest
    if "lora_scale" in model:
        cards["LORASCAL"] = model["lora_scale"]
    if "img2img" in conditions:
        cards["STRENGTH"] = conditions["img2img"]["strength"]
    cards["PROVJSON"] = json.dumps(attrs, sort_keys=True, separators=(",", ":"))
    return {key: value for key, value in cards.items() if value is not None}
