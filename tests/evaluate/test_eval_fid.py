"""FID/KID/IS/precision-recall in one process: equal to torch-fidelity's own calculate_metrics,
images fed as the extractor expects, the real-store cache, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import eval_tiny_extractor
from galaxy_hpc.cli.main import main
from galaxy_hpc.evaluate.config import FeatureSettings, FidConfig
from galaxy_hpc.evaluate.fid import run_fid
from galaxy_hpc.evaluate.inputs import extractor_input
from hpc.store import open_store

TINY = eval_tiny_extractor.NAME


class StoreImages(torch.utils.data.Dataset):
    """A store's uint8 images as torch-fidelity takes them: one (3, H, W) uint8 tensor each."""

    def __init__(self, path):
        self.images = open_store(path).read_images()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return torch.from_numpy(self.images[index])


def fid_config(stores, tmp_path, **overrides):
    settings = {"features": FeatureSettings(extractor=TINY), "kid_subset_size": 50,
                "cache_dir": str(tmp_path / "cache"), **overrides}
    return FidConfig(real=str(stores["real"]), generated=str(stores["generated"]), **settings)


def test_equals_torch_fidelity_calculate_metrics(stores, tmp_path):
    import torch_fidelity

    ours = run_fid(fid_config(stores, tmp_path, metrics=["fid", "kid", "isc", "prc"]),
                   show_progress=False).to_dict()
    theirs = torch_fidelity.calculate_metrics(
        input1=StoreImages(stores["generated"]), input2=StoreImages(stores["real"]), cuda=False,
        fid=True, kid=True, isc=True, prc=True, feature_extractor=TINY, kid_subset_size=50,
        cache=False, verbose=False, save_cpu_ram=True)
    m = ours["metrics"]
    assert m["fid"] > 0.1  # the populations differ: a mean term torch-fidelity rounds in float32
    assert m["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert m["kid_mean"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    assert m["kid_std"] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-9)
    assert m["isc_mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-9)
    assert m["isc_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-6)
    assert m["isc_mean"] > 1.2  # splits matter: a degenerate IS of 1 would hide a split bug
    for key in ("precision", "recall", "f_score"):
        assert m[key] == pytest.approx(theirs[key], abs=1e-9)
    assert (ours["num_real"], ours["num_generated"]) == (96, 80)
    assert ours["kept"] == {"real": 96, "generated": 80, "bound": 10000}
    assert ours["input_description"] == "uint8 RGB images fed unchanged"
    assert ours["extractor"]["layers"] == {"fid": "feat", "kid": "feat", "isc": "logits",
                                           "prc": "feat"}


def test_float_flux_goes_through_the_training_stretch(float_stores, stores):
    from galaxy_hpc.data.stretch import stretch_for_store

    real, generated = (open_store(float_stores[k]) for k in ("real", "generated"))
    pixels = extractor_input(real, generated)
    images = generated.read_images(0, 4)
    y = stretch_for_store(real).forward(images)  # what training feeds the model
    expected = np.clip(np.rint((y.astype(np.float64) + 1) * 127.5), 0, 255)[:, ::-1]
    np.testing.assert_array_equal(pixels.to_uint8(images).numpy(), expected.astype(np.uint8))
    assert pixels.describe().startswith("float32 flux -> asinh stretch (estimated from the real "
                                        "store) -> [-1, 1] -> uint8")
    assert "bands [2, 1, 0] as R, G, B" in pixels.describe()
    with pytest.raises(ValueError, match="different kinds of images"):
        extractor_input(real, open_store(stores["generated"]))


def test_real_statistics_are_cached_reused_and_invalidated(stores, tmp_path):
    from eval_stores import draw

    real = tmp_path / "real.zarr"
    draw(real, 40, 11)
    cfg = fid_config({"real": real, "generated": stores["generated"]}, tmp_path,
                     metrics=["fid", "kid"], max_kept_features=30, kid_subset_size=20)
    first = run_fid(cfg, show_progress=False).to_dict()
    assert first["cache"]["status"] == "miss" and first["num_extracted"] == 80 + 40
    assert first["kept"] == {"real": 30, "generated": 30, "bound": 30}  # bounded subsets
    entry = first["cache"]["file"]
    again = run_fid(cfg, show_progress=False).to_dict()
    assert again["cache"] == {"status": "hit", "file": entry, "removed_stale": []}
    assert again["num_extracted"] == 80  # only the generated store was read
    assert again["metrics"] == first["metrics"]

    import shutil

    shutil.rmtree(real)
    draw(real, 40, 12)  # same path, other galaxies: a new checksum
    changed = run_fid(cfg, show_progress=False).to_dict()
    assert changed["cache"]["status"] == "miss" and changed["cache"]["removed_stale"] == [entry]
    assert changed["cache"]["file"] != entry
    assert changed["metrics"]["fid"] != pytest.approx(first["metrics"]["fid"], rel=1e-3)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [changed["cache"]["file"].rsplit("/", 1)[1],
         changed["cache"]["file"].rsplit("/", 1)[1].replace(".npz", ".json")])


def test_cli_prints_json_and_writes_the_run_folder(stores, tmp_path, capsys):
    status = main(["evaluate", "fid", str(stores["real"]), str(stores["generated"]),
                   "--extractor", TINY, "--kid-subset-size", "50", "--no-cache", "--json",
                   "--out", str(tmp_path / "run")])
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["evaluation"] == "fid" and printed["cache"]["status"] == "off"
    assert json.loads((tmp_path / "run" / "fid.json").read_text())["metrics"] == printed["metrics"]


def test_builtin_extractors_need_local_weights(stores, capsys):
    assert main(["evaluate", "fid", str(stores["real"]), str(stores["generated"])]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs --weights PATH" in err
    assert "weights-inception-2015-12-05-6726825d.pth" in err and "nothing is downloaded" in err
    assert main(["evaluate", "fid", str(stores["real"]), str(stores["generated"]),
                 "--extractor", "dinov2-vit-s-14", "--weights", "/nonexistent/dino"]) == 1
    assert "/nonexistent/dino" in capsys.readouterr().err
    assert main(["evaluate", "fid", str(stores["real"]), str(stores["generated"]),
                 "--extractor", "no-such-net"]) == 1
    assert "unknown feature extractor 'no-such-net'" in capsys.readouterr().err


def test_dinov2_from_a_local_transformers_folder(stores, tmp_path):
    from eval_stores import copy_head
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    folder = tmp_path / "dinov2-tiny"
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64, patch_size=32, image_size=224)
                ).save_pretrained(folder)
    real, generated = (copy_head(stores[k], tmp_path / f"{k}.zarr", 12) for k in stores)
    cfg = FidConfig(real=str(real), generated=str(generated),
                    features=FeatureSettings(extractor="dinov2-vit-s-14", weights=str(folder)),
                    metrics=["fid"], cache=False)
    result = run_fid(cfg, show_progress=False).to_dict()
    assert result["extractor"]["class"] == "galaxy_hpc.evaluate.dinov2_local.LocalDinoV2"
    assert result["extractor"]["input_size"] == 224 and result["metrics"]["fid"] > 0
    assert "resized by the extractor to 224x224" in result["extractor_description"]
