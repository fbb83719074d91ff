"""Exported weights are as readable as the user's umask says (issue #13, item 1).

safetensors 0.8.0 writes through mkstemp, so every `.safetensors` file came out 0600
while the JSON beside it was 0644. Each model family here runs one real training step
in a `galaxy-hpc train` process started under a given umask, and every file of the run
folder (exports, checkpoints, logs) is checked with `os.stat` alone: none is 0600, and
each has 0666 & ~umask (DeepSpeed's copied zero_to_fp32.py scripts add the owner's
execute bit, which is theirs to add).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "train"
ENV = {**os.environ, "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
ONE_STEP = ["run.max_steps=1", "run.checkpoint_every=1", "run.num_samples=1", "--json"]
RUNS = {
    "sd_lora": [("sd_lora_tiny.yaml", "uint8", [])],
    # 16 galaxies less the shared split's held-out ones: batches of 8.
    "dino": [("dino_full_tiny.yaml", "uint8", [
        "model.init_from=null", "run.micro_batch_size=8",
        "model.tiny={hidden_size: 32, num_layers: 2, num_heads: 2, patch_size: 8}"])],
    "gan": [("gan_tiny.yaml", "float32", [
        "model.generator_channels=[32,16,8]", "model.discriminator_channels=[8,16,32]",
        "model.latent_dim=16", "model.condition_dim=16", "model.style_dim=32",
        "model.consistency.num_samples=32", "model.consistency.report_num_samples=48"])],
    # The UNet run exports a GalaxyLDMPipeline around the VAE the first run exported.
    "ldm": [("ldm_vae_tiny.yaml", "uint8", []),
            ("ldm_unet_tiny.yaml", "uint8", ["model.vae_path=PREVIOUS/vae"])],
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    root = tmp_path_factory.mktemp("export-modes")
    made = {}
    for output in ("uint8", "float32"):
        made[output] = root / f"synth32-{output}.zarr"
        run_synth(SynthJobConfig(out=str(made[output]), num_galaxies=16, seed=3, shard_size=16,
                                 galaxy=SynthConfig(output=output, size=32)), progress=False)
    return made


def train_under_umask(galaxy_hpc, family: str, stores, root: Path, umask: int) -> list[Path]:
    """Run the family's steps as separate processes under `umask`; the run folders."""
    folders: list[Path] = []
    for index, (config, output, overrides) in enumerate(RUNS[family]):
        out = root / f"{family}-{index}"
        previous = str(folders[-1]) if folders else ""
        cmd = [galaxy_hpc, "train", str(CONFIGS / config), f"data.store={stores[output]}",
               f"run.output_dir={out}", *[o.replace("PREVIOUS", previous) for o in overrides],
               *ONE_STEP]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=root,
                              env=ENV, umask=umask)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
        assert json.loads(done.stdout.strip().splitlines()[-1])["artifact"]
        folders.append(out)
    return folders


@pytest.mark.parametrize("family, umask", [("sd_lora", 0o022), ("sd_lora", 0o002),
                                           ("dino", 0o002), ("gan", 0o022), ("ldm", 0o002)])
def test_every_file_of_a_run_follows_the_umask(galaxy_hpc, stores, tmp_path, family, umask):
    folders = train_under_umask(galaxy_hpc, family, stores, tmp_path, umask)
    expected = 0o666 & ~umask
    modes = {path: stat.S_IMODE(path.stat().st_mode)
             for folder in folders for path in folder.rglob("*") if path.is_file()}
    weights = [path for path in modes if path.suffix == ".safetensors"]
    assert weights, f"no .safetensors file in {folders}"
    private = sorted(str(path) for path, mode in modes.items() if mode == 0o600)
    assert not private, f"0600 under umask {umask:03o}: {private}"
    wrong = {str(path): f"{mode:03o}" for path, mode in modes.items()
             if mode & ~stat.S_IXUSR != expected}
    assert not wrong, f"expected {expected:03o} under umask {umask:03o}: {wrong}"


def test_follow_umask_leaves_deliberate_modes(tmp_path):
    """Only mkstemp's 0600 is changed: an executable or a read-only file was made so."""
    from hpc.files import follow_umask

    made = {name: tmp_path / "export" / name for name in ("w.safetensors", "run.sh", "ro.json")}
    made["w.safetensors"].parent.mkdir()
    for path, mode in zip(made.values(), (0o600, 0o750, 0o444)):
        path.write_text("x")
        path.chmod(mode)
    old = os.umask(0o027)
    try:
        assert follow_umask(tmp_path / "export") == [made["w.safetensors"]]
    finally:
        os.umask(old)
    assert [stat.S_IMODE(p.stat().st_mode) for p in made.values()] == [0o640, 0o750, 0o444]
