"""Small real stores for the evaluation tests, drawn once per session with GalSim.

"real": synthetic SDSS-like galaxies; "generated": another population (other seed, wider
PSF, brighter flux limit), so the two differ by a known amount. uint8 RGB composites and
float32 flux versions of each. The small extractor and predictor the tests use live in
eval_tiny_extractor.py / eval_tiny_predictor.py beside this file (importable here: pytest
puts this folder on sys.path; subprocesses get it through PYTHONPATH).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eval_stores import draw

HERE = Path(__file__).resolve().parent


GENERATED_LOOK = {"psf_fwhm_arcsec": 2.5, "r_mag_limit": 16.5}


@pytest.fixture(scope="session")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-stores")
    return {"real": draw(root / "real.zarr", 96, 1),
            "generated": draw(root / "gen.zarr", 80, 2, **GENERATED_LOOK)}


@pytest.fixture(scope="session")
def float_stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-float-stores")
    return {"real": draw(root / "real_flux.zarr", 64, 3, output="float32"),
            "generated": draw(root / "gen_flux.zarr", 48, 4, output="float32",
                              **GENERATED_LOOK)}


@pytest.fixture(scope="session")
def evaluated_run(float_stores, tmp_path_factory) -> Path:
    """RUN_DIR of `galaxy-hpc evaluate all` (the `evaluate` job) on the float stores: every
    evaluation with the test extractor, predictor and tiny CLIP, and the report."""
    import yaml

    import eval_tiny_clip
    import eval_tiny_extractor
    import eval_tiny_predictor
    from galaxy_hpc.cli.main import main

    root = tmp_path_factory.mktemp("eval-all")
    predictor = eval_tiny_predictor.save(root / "predictor", 3, 32)
    clip = root / "clip"
    eval_tiny_clip.tiny_clip(clip, ["a smooth round galaxy"])
    config = root / "evaluate.yaml"
    config.write_text(yaml.safe_dump({
        "kind": "evaluate", "real": str(float_stores["real"]),
        "generated": str(float_stores["generated"]), "out": str(root / "run"),
        "fid": {"features": {"extractor": eval_tiny_extractor.NAME}, "kid_subset_size": 40,
                "cache_dir": str(root / "cache")},
        "physics": {"max_galaxies": 6, "num_bins": 8},
        "morphology": {"predictor": str(predictor)},
        "clipscore": {"weights": str(clip), "cache_dir": str(root / "cache")}}))
    assert main(["evaluate", "all", str(config), "--json"]) == 0
    return root / "run"


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """Environment for evaluation subprocesses: the test extractor importable, one thread."""
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
