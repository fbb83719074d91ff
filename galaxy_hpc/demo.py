"""`galaxy-hpc demo`: the whole pipeline on a laptop, with embedded defaults.

Each step is a function of the demo context and returns one line for the
user; steps run in order and stop at the first failure. The pipeline grows
here as capabilities land (synthetic galaxies -> store -> training ->
catalog -> evaluation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class DemoContext:
    out_dir: Path
    num_tasks: int = 2
    num_galaxies: int = 256
    train_steps: int = 40
    num_objects: int = 64
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
    """Draw synthetic galaxies with known truth into a store, on the local executor's tasks."""
    from galaxy_hpc.data.synth import render_preview
    from galaxy_hpc.data.synth.job import SynthJobConfig
    from galaxy_hpc.jobs import JobCall
    from hpc.launch import submit, wait
    from hpc.store import open_store

    cfg = SynthJobConfig(out=str(ctx.out_dir / "synth.zarr"), num_galaxies=ctx.num_galaxies,
                         seed=0, shard_size=64)
    summary = wait(submit(JobCall("synth", cfg), profile=_local_profile(ctx),
                          job_name="ghpc-demo-synth"), poll_s=0.5)[0]
    store = open_store(summary.out)
    labels = [c.replace("sdss, ", "")[:30] for c in store.read_column("caption")[:16]]
    preview = render_preview(store.read_images(0, 16), ctx.out_dir / "synth_preview.png",
                             labels=labels, zoom=3)
    ctx.results["synth_store"] = summary.out
    ctx.results["image_side"] = store.spec.image_shape[-1]
    return (f"{len(store)} galaxies {'x'.join(map(str, store.spec.image_shape))} in {summary.out} "
            f"({summary.num_ranks} ranks, {summary.seconds:.0f} s); preview {preview}")


def step_ingest(ctx: DemoContext) -> str:
    """Write the synthetic galaxies the way GalaxySD users keep theirs (JPEG + .txt caption
    per galaxy), add one corrupt file, and ingest the folder back into a store."""
    from PIL import Image

    from galaxy_hpc.data.ingest.config import IngestConfig
    from galaxy_hpc.jobs import JobCall
    from hpc.launch import submit, wait
    from hpc.store import open_store

    source = open_store(ctx.results["synth_store"])
    folder = ctx.out_dir / "galaxysd_folder"
    folder.mkdir(exist_ok=True)
    captions = source.read_column("caption")
    for index, image in enumerate(source.read_images(0, len(source))):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"galaxy_{index:05d}.jpg", quality=92)
        (folder / f"galaxy_{index:05d}.txt").write_text(str(captions[index]))
    (folder / "galaxy_corrupt.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    (folder / "galaxy_corrupt.txt").write_text("sdss, elliptical galaxy")
    cfg = IngestConfig(source=str(folder), out=str(ctx.out_dir / "ingested.zarr"),
                       size=source.spec.image_shape[-1], shard_size=64)
    summary = wait(submit(JobCall("ingest", cfg), profile=_local_profile(ctx),
                          job_name="ghpc-demo-ingest"), poll_s=0.5)[0]
    ctx.results["train_store"] = summary.store
    return (f"{summary.num_ingested} of {summary.num_inputs} JPEGs in {summary.store}; "
            f"{summary.num_rejected} set aside in {summary.rejects_file}")


def step_train(ctx: DemoContext) -> str:
    """Fine-tune a tiny SD-1.5-shaped model with LoRA on the ingested galaxies (ZeRO-2)."""
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    out = ctx.out_dir / "sd_lora_tiny"
    cfg = load_job_config("train", _repo_config("train/sd_lora_tiny.yaml"), [
        f"data.store={ctx.results['train_store']}", f"run.output_dir={out}",
        f"run.max_steps={ctx.train_steps}", "run.log_every=5"])
    result = wait(submit(JobCall("train", cfg), profile=_local_profile(ctx),
                         job_name="ghpc-demo-train"), poll_s=1.0)[0]
    grids = sorted((out / "samples").glob("*.png"))
    return (f"{result.step} steps on {ctx.num_tasks} ranks, loss {result.loss:.3f}; LoRA weights "
            f"{result.artifact}; samples {grids[-1] if grids else '-'}")


def step_train_dino(ctx: DemoContext) -> str:
    """Train a tiny DINOv2 vote-fraction regressor on the synthetic galaxies (their true
    GZ2-like votes): the morphology judge and the FID feature network of the next steps."""
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    out = ctx.out_dir / "dino_tiny"
    cfg = load_job_config("train", _repo_config("train/dino_full_tiny.yaml"), [
        f"data.store={ctx.results['synth_store']}", f"run.output_dir={out}",
        f"run.max_steps={ctx.train_steps}", "run.log_every=5", "model.init_from=null",
        "model.tiny={hidden_size: 32, num_layers: 2, num_heads: 2, patch_size: 8}"])
    result = wait(submit(JobCall("train", cfg), profile=_local_profile(ctx),
                         job_name="ghpc-demo-dino"), poll_s=1.0)[0]
    ctx.results["predictor"] = str(out / "predictor")
    return (f"{result.step} steps on {ctx.num_tasks} ranks, loss {result.loss:.3f}; predictor "
            f"{out / 'predictor'}; held-out plot {out / 'eval' / 'true_vs_predicted.png'}")


def step_generate(ctx: DemoContext) -> str:
    """Mass-produce a catalog from the LoRA: captions drawn from the synthetic galaxies
    (their GZ2 votes ride along) with rare classes oversampled, shards handed out to the
    local executor's ranks."""
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    lora = ctx.out_dir / "sd_lora_tiny"
    out = ctx.out_dir / "catalog.zarr"
    cfg = load_job_config("generate", _repo_config("generate/catalog_tiny.yaml"), [
        f"out={out}", f"num_objects={ctx.num_objects}", "model.kind=sd_lora",
        f"model.path={lora / 'lora'}", f"model.base={lora / 'base'}",
        f"conditions.path={ctx.results['synth_store']}", "sampler.steps=6",
        f"size={ctx.results['image_side']}"])
    summary = wait(submit(JobCall("generate", cfg), profile=_local_profile(ctx),
                          job_name="ghpc-demo-generate"), poll_s=1.0)[0]
    ctx.results["catalog"] = str(out)
    return summary.summary().splitlines()[0]


def step_evaluate(ctx: DemoContext) -> str:
    """FID with the regressor's DINOv2 backbone as feature network, morphology of the
    catalog through the regressor, the augmentation experiment, and the HTML report."""
    from galaxy_hpc.evaluate.augmentation import run_augmentation
    from galaxy_hpc.evaluate.augmentation_config import AugmentationConfig, ClassifierSection
    from galaxy_hpc.evaluate.report import build_report
    from galaxy_hpc.jobs import JobCall, load_job_config
    from hpc.launch import submit, wait

    run_dir = ctx.out_dir / "evaluation"
    predictor = Path(ctx.results["predictor"])
    cfg = load_job_config("evaluate", _repo_config("evaluate/catalog.yaml"), [
        f"real={ctx.results['synth_store']}", f"generated={ctx.results['catalog']}",
        f"out={run_dir}", "evaluations=[fid, morphology]", "fid.metrics=[fid, kid]",
        "fid.features.extractor=dinov2-vit-s-14",
        f"fid.features.weights={predictor / 'backbone'}",
        f"morphology.predictor={predictor}"])
    summary = wait(submit(JobCall("evaluate", cfg), profile=_local_profile(ctx),
                          job_name="ghpc-demo-evaluate"), poll_s=1.0)[0]
    augmentation = run_augmentation(AugmentationConfig(
        real_store=ctx.results["synth_store"], generated_store=ctx.results["catalog"],
        output_dir=str(run_dir), num_seeds=1, device="cpu",
        classifier=ClassifierSection(image_size=32, width=16, epochs=20)), show_progress=False)
    report = build_report(run_dir)  # again, with the augmentation experiment in it
    real, aug = (augmentation.arms[a]["mean"]["balanced_accuracy"]
                 for a in ("real", "real_plus_generated"))
    fid = summary.summaries.get("fid", "").splitlines()
    return (f"{fid[0] if fid else 'fid: -'}; augmentation: balanced accuracy {real:.2f} real "
            f"only, {aug:.2f} with the catalog; report {report.html}")


def _repo_config(name: str) -> Path:
    """A config shipped in the checkout's configs/ (the demo runs from an editable install)."""
    path = Path(__file__).resolve().parents[1] / "configs" / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run the demo from a galaxy-hpc checkout")
    return path


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("distributed self-test", step_selftest),
    ("synthetic galaxies -> store", step_synth),
    ("GalaxySD-style JPEG folder -> ingest", step_ingest),
    ("train Stable Diffusion (tiny, LoRA, ZeRO-2)", step_train),
    ("train the DINOv2 vote-fraction regressor (tiny, ZeRO-2)", step_train_dino),
    ("generate a catalog (MPI work queue, rare classes oversampled)", step_generate),
    ("evaluate: FID, morphology, augmentation experiment, report", step_evaluate),
]


def run_demo(out_dir: Path, num_tasks: int = 2, echo: Callable[[str], None] = print) -> DemoContext:
    ctx = DemoContext(out_dir=out_dir, num_tasks=num_tasks)
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, (title, step) in enumerate(STEPS, start=1):
        echo(f"[{index}/{len(STEPS)}] {title} ...")
        start = time.perf_counter()
        line = step(ctx)
        echo(f"      {line} ({time.perf_counter() - start:.1f} s)")
    echo(f"demo finished: outputs in {out_dir}")
    return ctx
