"""Where results go: one JSON per evaluation in a run folder, which `galaxy-hpc report` reads.

Each result names the stores it compared (path, count, checksum, attributes: the catalog's
provenance), so a report can be rebuilt from the folder alone, and a result can be tied to
exactly the bytes it was computed on.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc.store import Store

RESULT_FILES = {"fid": "fid.json", "physics": "physics.json", "morphology": "morphology.json",
                "morphology_fidelity": "morphology_fidelity.json",
                "conditioning": "conditioning.json", "clipscore": "clipscore.json"}


@dataclass
class EvaluationResult:
    """What an evaluation returns on every rank: the data its JSON holds, and (each
    evaluation its own) `summary()`, the lines a terminal shows."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def summary(self) -> str:
        raise NotImplementedError


def store_summary(store: Store) -> dict[str, Any]:
    spec = store.spec
    return {"path": str(Path(store.path).resolve()), "count": len(store),
            "checksum": store.checksum, "image_shape": list(spec.image_shape),
            "image_dtype": spec.image_dtype, "attrs": store.attrs}


def _finite(value: Any) -> Any:
    """NaN/inf -> None, so the JSON is standard (browsers and jq reject NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(_finite(result), sort_keys=False)


def write_result(run_dir: str | os.PathLike, name: str, result: dict[str, Any]) -> Path:
    """RUN_DIR/<name>.json, atomically."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULT_FILES.get(name, f"{name}.json")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_finite(result), indent=1))
    os.replace(tmp, path)
    return path


def read_results(run_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """{name: result} of the evaluations found in RUN_DIR."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    found = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        if isinstance(data, dict) and data.get("evaluation"):
            found[data["evaluation"]] = data
    return found
