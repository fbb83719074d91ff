"""The catalog job with a tiny Stable Diffusion model on CPU, against one reference catalog
(conftest.py): 2 MPI ranks make the same bytes; a SIGKILL of the whole job mid-run and
a rerun (on another number of ranks) make the same bytes; a preemption signal finishes
the shard in flight, exits 75, and the rerun completes; one object regenerated alone has
its catalog bytes; the FITS table beside the store matches it; provenance is recorded;
a different config is refused instead of mixed in.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gen_helpers import ENV, store_content, write_config

NUM_OBJECTS, NUM_SHARDS = 48, 12


def completed_records(out: Path) -> int:
    try:
        return sum(1 for name in os.listdir(out / "item_digests") if re.match(r"c\.\d+\.0$", name))
    except FileNotFoundError:
        return 0


def assert_same_catalog(out, reference) -> None:
    checksum, images, columns = store_content(out)
    assert checksum == reference["store"].checksum
    np.testing.assert_array_equal(images, reference["images"])
    for name, values in columns.items():
        assert list(values) == list(reference["store"].read_column(name)), name


def cli_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_reference_catalog_holds_every_object_once_with_its_provenance(reference, models):
    from galaxy_hpc.generate.hashing import path_sha256
    from galaxy_hpc.generate.seeds import object_seed

    store, summary = reference["store"], reference["summary"]
    assert summary.ok and len(store) == NUM_OBJECTS and summary.shards_total == NUM_SHARDS
    store.verify()
    assert store.read_column("index").tolist() == list(range(NUM_OBJECTS))
    assert store.read_column("seed").tolist() == [object_seed(7, i) for i in range(NUM_OBJECTS)]
    assert len(set(store.read_column("seed").tolist())) == NUM_OBJECTS
    assert store.read_column("source_row").tolist() == [i // 8 for i in range(NUM_OBJECTS)]
    assert store.read_column("source_id")[9] == "obj001"
    assert set(store.read_column("sampler").tolist()) == {"euler_ancestral"}
    assert set(store.read_column("num_steps").tolist()) == {4}
    assert set(store.read_column("guidance_scale").tolist()) == {3.0}
    assert set(store.read_column("model_hash").tolist()) == {summary.model_hash}
    generate = store.attrs["generate"]
    fingerprint = generate["fingerprint"]
    assert fingerprint["model"]["sha256"] == {"pipeline": path_sha256(models["sd"])}
    assert fingerprint["sampler"] == {"name": "euler_ancestral", "steps": 4,
                                      "guidance_scale": 3.0, "eta": 0.0}
    assert generate["scheduler"]["class"] == "EulerAncestralDiscreteScheduler"
    assert fingerprint["conditions"]["sha256"].startswith("sha256:")
    assert generate["runtime"]["precision"] == "fp32"
    # Different objects with the same caption differ (their seeds do).
    images = reference["images"]
    assert not np.array_equal(images[0], images[1])


def test_text_embeddings_are_computed_once_per_distinct_caption(reference):
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import build_catalog
    from hpc.config import load_config

    catalog = build_catalog(load_config(reference["config"], cls=GenerateConfig))
    calls = []
    catalog.generator.pipe.text_encoder.register_forward_hook(
        lambda module, args, out: calls.append(args[0].shape[0]))
    images, _ = catalog.make_shard(0, 8)
    # 6 distinct captions: one group of them, and the empty negative prompt, for 8 objects.
    assert calls == [6, 1]
    np.testing.assert_array_equal(images, reference["images"][:8])


@pytest.mark.mpi
def test_two_mpi_ranks_make_the_reference_bytes(reference, galaxy_hpc, mpiexec, tmp_path):
    out = tmp_path / "two.zarr"
    done = subprocess.run([mpiexec, "-n", "2", galaxy_hpc, "generate", str(reference["config"]),
                           f"out={out}", "--json"], env=ENV, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["num_ranks"] == 2 and result["ok"]
    assert sum(result["shards_per_rank"]) == NUM_SHARDS and min(result["shards_per_rank"]) >= 1
    assert_same_catalog(out, reference)


@pytest.mark.mpi
def test_sigkill_of_the_whole_job_mid_run_then_rerun_gives_the_reference(
        reference, galaxy_hpc, mpiexec, tmp_path):
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import run_generate
    from hpc.config import load_config
    from hpc.store import open_store_for_writing

    out = tmp_path / "killed.zarr"
    job = subprocess.Popen([mpiexec, "-n", "2", galaxy_hpc, "generate",
                            str(reference["config"]), f"out={out}", "--json"],
                           env=ENV, cwd=tmp_path, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while completed_records(out) < 2:
        assert job.poll() is None, job.communicate()[1][-3000:]
        assert time.time() < deadline, "no shard was written in time"
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)  # mpiexec and both ranks, at once
    job.wait(timeout=60)
    writer = open_store_for_writing(out)
    pending = writer.pending_shards()
    assert not writer.manifest.complete and pending, "killed too late"
    assert not reference["table"].with_name("killed.fits").exists()
    # The same command again (here on one rank, in this process) finishes the catalog.
    summary = run_generate(load_config(reference["config"], [f"out={out}"], cls=GenerateConfig),
                           progress=False)
    assert summary.ok and 0 < summary.objects_this_run < NUM_OBJECTS
    assert summary.shards_this_run == len(pending)
    assert_same_catalog(out, reference)


def test_preemption_signal_finishes_the_shard_exits_75_and_the_rerun_completes(
        reference, tmp_path, capsys, monkeypatch):
    from galaxy_hpc.cli.main import main

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    out = tmp_path / "preempted.zarr"
    args = ["generate", str(reference["config"]), f"out={out}", "--json"]

    def preempt_after_the_first_shard() -> None:
        deadline = time.time() + 300
        while completed_records(out) < 1 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGUSR1)

    threading.Thread(target=preempt_after_the_first_shard, daemon=True).start()
    assert main(args) == 75
    result = cli_json(capsys)
    assert result["preempted"] and not result["ok"] and result["checksum"] is None
    done = completed_records(out)
    assert 1 <= done < NUM_SHARDS and result["shards_this_run"] == done
    assert result["objects_this_run"] == 4 * done  # whole shards only
    assert main(args) == 0
    result = cli_json(capsys)
    assert result["ok"] and result["shards_this_run"] == NUM_SHARDS - done
    assert_same_catalog(out, reference)


@pytest.mark.parametrize("index, ending", [(13, ".npy"), (47, ".fits")])
def test_one_object_regenerated_alone_has_its_catalog_bytes(reference, tmp_path, capsys,
                                                            index, ending):
    from astropy.io import fits

    from galaxy_hpc.cli.main import main

    target = tmp_path / f"object{ending}"
    assert main(["generate", str(reference["config"]), "--object", str(index),
                 "--out", str(target), "--json"]) == 0
    result = cli_json(capsys)
    assert result["matches_catalog"] is True and result["digest"] == result["catalog_digest"]
    image = np.load(target) if ending == ".npy" else fits.getdata(target)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, reference["images"][index])
    assert result["row"]["seed"] == int(reference["store"].read_column("seed")[index])
    assert result["row"]["caption"] == reference["store"].read_column("caption")[index]


def test_fits_table_opens_with_astropy_and_matches_the_store(reference):
    from astropy.io import fits
    from astropy.table import Table

    store = reference["store"]
    table = Table.read(reference["table"])
    assert len(table) == len(store) and table.colnames == store.columns
    for name in store.columns:
        ours = store.read_column(name).tolist()
        theirs = [v.decode() if isinstance(v, bytes) else v for v in table[name].tolist()]
        assert theirs == ours, name
    header = fits.getheader(reference["table"], "CATALOG")
    fingerprint = store.attrs["generate"]["fingerprint"]
    assert header["STORESUM"] == store.checksum and header["NOBJ"] == NUM_OBJECTS
    assert (header["SAMPLER"], header["NSTEPS"], header["GUIDANCE"]) == ("euler_ancestral", 4, 3.0)
    assert header["SEED"] == 7 and header["MODKIND"] == "sd"
    assert (header["MODROLE0"], header["MODSHA0"]) == (
        "pipeline", fingerprint["model"]["sha256"]["pipeline"])
    assert json.loads(header["PROVJSON"]) == store.attrs


def test_a_catalog_is_not_resumed_with_another_config(reference):
    from galaxy_hpc.generate.config import GenerateConfig
    from galaxy_hpc.generate.job import run_generate
    from hpc.config import load_config

    before = reference["store"].checksum
    cfg = load_config(reference["config"], ["sampler.steps=5", "seed=8"], cls=GenerateConfig)
    with pytest.raises(ValueError, match=r"sampler\.steps: 4 != 5; seed: 7 != 8"):
        run_generate(cfg, progress=False)
    assert store_content(reference["store"].path)[0] == before


def test_model_hash_follows_the_weights_not_the_folder(models, tmp_path):
    import shutil

    from galaxy_hpc.generate.hashing import path_sha256

    copy = tmp_path / "elsewhere"
    shutil.copytree(models["sd"], copy)
    assert path_sha256(copy) == path_sha256(models["sd"])
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert path_sha256(copy) != path_sha256(models["sd"])


def test_object_seeds_and_batches_depend_only_on_seed_and_index():
    from galaxy_hpc.generate.seeds import batch_of, object_seed, shard_batches

    assert object_seed(7, 3) == object_seed(7, 3) != object_seed(7, 4) != object_seed(8, 3)
    assert 0 <= object_seed(2**40, 10**9) < 2**63
    batches = [b.tolist() for b in shard_batches(4, 8, 3)]
    assert batches == [[4, 5, 6], [7]]
    assert batch_of(7, 4, 3, 48).tolist() == [7] and batch_of(5, 4, 3, 48).tolist() == [4, 5, 6]
    with pytest.raises(ValueError, match="objects 0..47"):
        batch_of(48, 4, 3, 48)


def test_config_mistakes_name_the_field(tmp_path):
    from hpc.config import ConfigError, load_config

    def load(**data):
        return load_config(write_config(tmp_path / "c.yaml", data))

    with pytest.raises(ConfigError, match="sampler.name: must be one of"):
        load(sampler={"name": "plms"})
    with pytest.raises(ConfigError, match="oversample needs selection: sample"):
        load(conditions={"source": "table", "path": "t.csv", "oversample": 3.0})
    with pytest.raises(ConfigError, match="num_objects: needed"):
        load(conditions={"source": "store", "path": "s.zarr"})
    with pytest.raises(ConfigError, match="model.base"):
        load(model={"kind": "sd_lora", "path": "lora"})
    with pytest.raises(ConfigError, match="img2img needs source: store"):
        load(conditions={"source": "table", "path": "t.csv", "img2img": True})
