"""`galaxy-hpc demo`: the whole pipeline on a laptop, with embedded defaults.

Each step is a function of the demo context and returns one line for the user; steps
run in order and stop at the first failure: synthetic flux galaxies -> a store (and a
JPEG folder ingested) -> the conditional GAN trained with DeepSpeed on the local
executor's ranks -> its export, and the same network untrained, exported the same way ->
a DINOv2 regressor (the FID's feature network) -> a catalog from each generator (MPI) ->
FID and conditioning of both -> one report of what training bought.

The GAN is the generator here because it is the one that makes galaxy-like pictures
fastest on a CPU: one forward pass a galaxy, no sampler, and at 32 px a few hundred
steps (demo_recipe.py holds the recipe and its measurements).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from galaxy_hpc.demo_recipe import GAN_RECIPE, untrained_copy


@dataclass
class DemoContext:
    out_dir: Path
    num_tasks: int = 2
    num_galaxies: int = 1200
    image_side: int = 32
    num_ingested: int = 128
    gan_steps: int = int(GAN_RECIPE["run.max_steps"])
    train_steps: int = 40  # the DINOv2 regressor's
    num_objects: int = 640  # per catalog: ~70 per fidelity cell (3 x 3)
    results: dict[str, object] = field(default_factory=dict)


def step_selftest(ctx: DemoContext) -> str:
    """Start the local executor with several tasks and run the distributed self-test."""
    from galaxy_hpc.jobs import JobCall
    from hpc.launch import submit, wait
    from hpc.selftest import SelfTestConfig

    submitted = submit(JobCall("selftest", SelfTestConfig()), profile=_local_profile(ctx),
                       job_name="ghpc-demo-selftest")
    result = wait(submitted, poll_s=0.5)[0]
    ctx.results["selftest"] = result
    if not result.ok:
        raise RuntimeError(f"distributed self-test failed:\n{result.summary()}\n"
                           f"logs: {submitted.stdout.parent}")
    return (f"local executor, {result.world_size} tasks, {result.backend}: all_reduce sum "
            f"{result.torch_sum:g} (expected {result.torch_expected:g}); logs in "
            f"{submitted.stdout.parent}")


def _local_profile(ctx: DemoContext):
    from hpc.launch import ClusterProfile

    return ClusterProfile(name="local", executor="local", tasks_per_node=ctx.num_tasks,
                          time_min=30, log_dir=str(ctx.out_dir / "logs"))


def step_synth(ctx: DemoContext) -> str:
    """Draw synthetic flux galaxies (g, r, i; true redshift, mass and GZ2 votes known)
    into a store, on the local executor's tasks."""
    from galaxy_hpc.data.synth import SynthConfig, render_preview
    from galaxy_hpc.data.synth.job import SynthJobConfig
    from galaxy_hpc.jobs import JobCall
    from hpc.launch import submit, wait
    from hpc.store import open_store

    cfg = SynthJobConfig(out=str(ctx.out_dir / "synth.zarr"), num_galaxies=ctx.num_galaxies,
                         seed=0, shard_size=250,
                         galaxy=SynthConfig(output="float32", size=ctx.image_side))
    summary = wait(submit(JobCall("synth", cfg), profile=_local_profile(ctx),
                          job_name="ghpc-demo-synth"), poll_s=0.5)[0]
    store = open_store(summary.out)
    preview = render_preview(store.read_images(0, 16), ctx.out_dir / "synth_preview.png",
                             zoom=4)
    ctx.results["synth_store"] = summary.out
    return (f"{len(store)} galaxies {'x'.join(map(str, store.spec.image_shape))} "
            f"{store.spec.image_dtype} in {summary.out} ({summary.num_ranks} ranks, "
            f"{summary.seconds:.0f} s); preview {preview}")


def step_ingest(ctx: DemoContext) -> str:
    """Write some of the galaxies the way GalaxySD users keep theirs (JPEG + .txt caption
    per galaxy, the flux through the store's stretch), add one corrupt file, and ingest
    the folder back into a store."""
    from PIL import Image

    from galaxy_hpc.data.ingest.config import IngestConfig
    from galaxy_hpc.evaluate.inputs import extractor_input
    from galaxy_hpc.jobs import JobCall
    from hpc.launch import submit, wait
    from hpc.store import open_store

    source = open_store(ctx.results["synth_store"])
    folder = ctx.out_dir / "galaxysd_folder"
    folder.mkdir(exist_ok=True)
    num = min(ctx.num_ingested, len(source))
    captions = source.read_column("caption")
    pictures = extractor_input(source, source).to_uint8(source.read_images(0, num)).numpy()
    for index, image in enumerate(pictures):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"galaxy_{index:05d}.jpg",
                                                       quality=92)
        (folder / f"galaxy_{index:05d}.txt").write_text(str(captions[index]))
    (folder / "galaxy_corrupt.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    (folder / "galaxy_corrupt.txt").write_text("sdss, elliptical galaxy")
    cfg = IngestConfig(source=str(folder), out=str(ctx.out_dir / "ingested.zarr"),
                       size=source.spec.image_shape[-1], shard_size=64)
    summary = wait(submit(JobCall("ingest", cfg), profile=_local_profile(ctx),
                          job_name="ghpc-demo-ingest"), poll_s=0.5)[0]
    return (f"{summary.num_ingested} of {summary.num_inputs} JPEGs in {summary.store}; "
            f"{summary.num_rejected} set aside in {summary.rejects_file}")


def step_train(ctx: DemoContext) -> str:
    """Train the conditional GAN on (redshift, log M*) with ZeRO-2 on the local executor's
    ranks; the run exports its EMA generator."""
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    out = ctx.out_dir / "gan"
    recipe = {**GAN_RECIPE, "run.max_steps": ctx.gan_steps}
    cfg = load_job_config("train", _repo_config("train/gan.yaml"), [
        f"data.store={ctx.results['synth_store']}", f"run.output_dir={out}",
        *(f"{key}={value}" for key, value in recipe.items())])
    result = wait(submit(JobCall("train", cfg), profile=_local_profile(ctx),
                         job_name="ghpc-demo-gan"), poll_s=1.0)[0]
    ctx.results["generator"] = result.artifact
    grids = sorted((out / "samples").glob("*.png"))
    return (f"{result.step} steps of {cfg.run.micro_batch_size} x {ctx.num_tasks} ranks, "
            f"loss {result.loss:.3f}, {result.images_per_s:.0f} images/s; generator "
            f"{result.artifact}; samples {grids[-1] if grids else '-'}")


def step_untrained(ctx: DemoContext) -> str:
    """The same generator with its initial weights, exported the same way: the baseline
    the report measures training against."""
    folder = untrained_copy(Path(str(ctx.results["generator"])), ctx.out_dir / "gan_untrained",
                            seed=int(GAN_RECIPE["run.seed"]))
    ctx.results["untrained"] = str(folder)
    return f"freshly initialised generator (seed {GAN_RECIPE['run.seed']}) in {folder}"


def step_train_dino(ctx: DemoContext) -> str:
    """Train a tiny DINOv2 vote-fraction regressor on the synthetic galaxies (their true
    GZ2-like votes): the feature network of the FID below. (An FID needs features that
    know galaxies; a randomly initialised network's would rank noise and galaxies alike.)"""
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    out = ctx.out_dir / "dino_tiny"
    cfg = load_job_config("train", _repo_config("train/dino_full_tiny.yaml"), [
        f"data.store={ctx.results['synth_store']}", f"run.output_dir={out}",
        f"run.max_steps={ctx.train_steps}", "run.log_every=5", "model.init_from=null",
        "model.tiny={hidden_size: 32, num_layers: 2, num_heads: 2, patch_size: 8}",
        "model.heldout.max_items=256"])
    result = wait(submit(JobCall("train", cfg), profile=_local_profile(ctx),
                         job_name="ghpc-demo-dino"), poll_s=1.0)[0]
    ctx.results["predictor"] = str(out / "predictor")
    return (f"{result.step} steps on {ctx.num_tasks} ranks, loss {result.loss:.3f}; predictor "
            f"{out / 'predictor'}; held-out plot {out / 'eval' / 'true_vs_predicted.png'}")


def step_generate(ctx: DemoContext) -> str:
    """A catalog from each generator: conditions drawn from the synthetic galaxies' rows
    (their redshift and mass), shards handed out to the local executor's ranks."""
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    lines = []
    for name, generator in (("trained", ctx.results["generator"]),
                            ("untrained", ctx.results["untrained"])):
        out = ctx.out_dir / f"catalog_{name}.zarr"
        cfg = load_job_config("generate", _repo_config("generate/catalog_tiny.yaml"), [
            f"out={out}", f"num_objects={ctx.num_objects}", "model.kind=gan",
            f"model.path={generator}", "size=null", "conditions.source=store",
            "conditions.selection=sample", f"conditions.path={ctx.results['synth_store']}",
            "shard_size=160"])
        summary = wait(submit(JobCall("generate", cfg), profile=_local_profile(ctx),
                              job_name=f"ghpc-demo-generate-{name}"), poll_s=1.0)[0]
        ctx.results[f"catalog_{name}"] = str(out)
        lines.append(f"{name}: {summary.summary().splitlines()[0]}")
    return "; ".join(lines)


def step_evaluate(ctx: DemoContext) -> str:
    """FID (the regressor's DINOv2 backbone as feature network) and conditioning (Spearman
    trends, per-cell fidelity) of each catalog, then the report of the trained one with
    the untrained one beside it."""
    from galaxy_hpc.evaluate.report import build_report
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    predictor = Path(str(ctx.results["predictor"]))
    fids = {}
    for name in ("untrained", "trained"):
        cfg = load_job_config("evaluate", _repo_config("evaluate/catalog.yaml"), [
            f"real={ctx.results['synth_store']}", f"generated={ctx.results['catalog_' + name]}",
            f"out={ctx.out_dir / 'evaluation' / name}", "evaluations=[fid, conditioning]",
            "report=false", "fid.metrics=[fid, kid]", "fid.features.extractor=dinov2-vit-s-14",
            f"fid.features.weights={predictor / 'backbone'}",
            f"fid.cache_dir={ctx.out_dir / 'evaluation' / 'cache'}"])
        summary = wait(submit(JobCall("evaluate", cfg), profile=_local_profile(ctx),
                              job_name=f"ghpc-demo-evaluate-{name}"), poll_s=1.0)[0]
        fids[name] = summary.summaries.get("fid", "").splitlines()
    report = build_report(ctx.out_dir / "evaluation" / "trained",
                          baseline=ctx.out_dir / "evaluation" / "untrained", label="trained",
                          baseline_label="untrained")
    ctx.results["report"] = report.html
    return (f"untrained {fids['untrained'][0] if fids['untrained'] else 'fid: -'}; trained "
            f"{fids['trained'][0] if fids['trained'] else 'fid: -'}; report {report.html}")


def _repo_config(name: str) -> Path:
    """A config shipped in the checkout's configs/ (the demo runs from an editable install)."""
    path = Path(__file__).resolve().parents[1] / "configs" / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run the demo from a galaxy-hpc checkout")
    return path


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("distributed self-test", step_selftest),
    ("synthetic flux galaxies -> store", step_synth),
    ("GalaxySD-style JPEG folder -> ingest", step_ingest),
    ("train the conditional GAN (ZeRO-2) and export it", step_train),
    ("the same GAN untrained, exported the same way", step_untrained),
    ("train the DINOv2 vote-fraction regressor (tiny, ZeRO-2)", step_train_dino),
    ("generate a catalog from each GAN (MPI work queue)", step_generate),
    ("evaluate both: FID, conditioning, report of what training bought", step_evaluate),
]


def run_demo(out_dir: Path, num_tasks: int = 2, echo: Callable[[str], None] = print,
             **sizes: int) -> DemoContext:
    """`sizes`: DemoContext's counts (num_galaxies, gan_steps, ...), smaller for a test."""
    ctx = DemoContext(out_dir=out_dir, num_tasks=num_tasks, **sizes)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for index, (title, step) in enumerate(STEPS, start=1):
        echo(f"[{index}/{len(STEPS)}] {title} ...")
        start = time.perf_counter()
        line = step(ctx)
        echo(f"      {line} ({time.perf_counter() - start:.1f} s)")
    echo(f"demo finished in {time.perf_counter() - started:.0f} s: outputs in {out_dir}; "
         f"open {ctx.results.get('report')}")
    return ctx
