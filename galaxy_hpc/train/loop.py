"""The one training loop: every model family runs through it, on 1 CPU or 1,000 GPUs.

    galaxy-hpc train configs/train/sd_lora.yaml run.max_steps=2000

What the loop provides, so that families do not: DeepSpeed ZeRO (hpc.zero),
data sharded over ranks with exact mid-epoch resume (StoreLoader), an LR
schedule, EMA, a JSONL log (and TensorBoard, W&B) with images/s and MFU, sample grids,
checkpoints that are complete or ignored (hpc.checkpoint), and preemption:
a Slurm warning signal makes every rank save the same step and requeue the job
(hpc.preempt). With data.validation_fraction the held-out items are never trained on,
and every run.eval_every steps their loss is logged, the best checkpoint kept and
early stopping applied (validation.py). What a rerun finds in the output folder
(another config, a run already complete) is decided in run_dir.py before anything is
built.

Randomness is stateless: before each micro-step the global torch RNG is
seeded from (seed, micro-step, rank), so noise, timesteps and dropout depend
on nothing but the step, and a resumed run draws exactly what the
uninterrupted run would have drawn without saving any RNG state.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as torch_dist

from galaxy_hpc.models.contract import DataFacts, ModelFamily
from galaxy_hpc.train import run_dir
from galaxy_hpc.train.metrics import LossWindow
from galaxy_hpc.train.optimizer import build_adamw
from galaxy_hpc.train.run_dir import TrainResult
from galaxy_hpc.train.validation import (
    BestTracker,
    as_row,
    in_store_order,
    measure_rank,
    name_best,
    validate_rank,
    validation_dataset,
    validation_result,
    whole_set_totals,
)
from hpc.checkpoint import checkpoint_dir, mark_complete, prune, resolve_resume
from hpc.comm import TorchComm, on_root
from hpc.config import save_config, to_dict
from hpc.dist import DistEnv
from hpc.preempt import PreemptionWatch


def family_for(cfg: Any, *, data: DataFacts, device: torch.device,
               dtype: torch.dtype) -> ModelFamily:
    """The registered family that trains `cfg` (galaxy_hpc/registry.py), found by its kind."""
    from galaxy_hpc.registry import spec_for_config
    from hpc.imports import import_target

    spec = spec_for_config(cfg)
    family = import_target(spec.family, f"model {spec.kind!r}: family")
    return family(cfg, data=data, device=device, dtype=dtype)


def step_seed(seed: int, micro_step: int, rank: int) -> int:
    digest = hashlib.sha256(f"{seed}:{micro_step}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def train(cfg: Any) -> TrainResult:
    """Job entry point: run on every rank (srun, mpiexec, torchrun or alone)."""
    from hpc.dist import destroy_distributed, init_distributed

    env = init_distributed()
    try:
        done = run_dir.prepare(cfg, is_main=env.is_main, barrier=torch_dist.barrier)
        if done is not None:
            return done
        trainer = Trainer(cfg, env)
        result = trainer.run()
    finally:
        destroy_distributed()
    if result.ok:
        # The artifact is judged after the process group is gone, on rank 0 alone: no
        # rank waits on it under a collective timeout. The result is written only then,
        # so a run killed while judging is judged again when rerun.
        if env.is_main:
            result.evaluation = trainer.family.evaluate_export(Path(result.artifact),
                                                               trainer.out)
            run_dir.write_result(trainer.out, asdict(result))
    return result


class Trainer:
    def __init__(self, cfg: Any, env: DistEnv) -> None:
        from galaxy_hpc.data.augment import GalaxyAugment
        from galaxy_hpc.data.dataset import StoreDataset
        from galaxy_hpc.data.loader import StoreLoader
        from galaxy_hpc.data.split import Split
        from galaxy_hpc.data import nonfinite
        from galaxy_hpc.data.stretch import stretch_for_store
        from galaxy_hpc.train.ema import ParameterEMA
        from galaxy_hpc.train.schedule import lr_multiplier
        from hpc.store import open_store
        from hpc.zero import build_engine, partitioned_build, torch_dtype

        self.cfg, self.env = cfg, env
        self.log: Any = None  # the RunLog, once the loop runs (sample grids go to its trackers)
        self.device = (torch.device("cuda", torch.cuda.current_device())
                       if env.backend == "nccl" else torch.device("cpu"))
        self.out = Path(cfg.run.output_dir)
        self.checkpoints = self.out / "checkpoints"
        # The data side first: the family is handed what the dataset found (store, stretch,
        # columns, the held-out split) instead of re-deriving it.
        store = open_store(cfg.data.store)
        split = (Split.of(len(store), fraction=cfg.data.validation_fraction,
                          seed=cfg.data.validation_seed)
                 if cfg.data.validation_fraction else None)
        augment = GalaxyAugment(rotation=cfg.data.rotation) if cfg.data.augment else None
        # Facts of the store that every rank needs and that read images (the stretch of a
        # float store from a sample, a family's survey noise): read on rank 0, broadcast.
        shared = partial(on_root, TorchComm(env))
        nonfinite.check_column(store, use="training")  # counted at ingest: refused first
        stretch = shared(lambda: stretch_for_store(store).to_dict())
        dataset = StoreDataset(
            store, items=None if split is None else split.train, rank=env.rank,
            stretch=stretch,
            world_size=env.world_size, seed=cfg.run.seed,
            shuffle=True, drop_last=True, batch_size=cfg.run.micro_batch_size,
            shuffle_shards=cfg.data.shuffle_shards,
            augment=augment,
            caption_column=cfg.data.caption_column,
            shuffle_caption_tags=cfg.data.shuffle_caption_tags,
            caption_dropout=cfg.data.caption_dropout,
            condition_columns=cfg.data.condition_columns,
            # From cached latents (data.latents) the family never looks at pixels: reading
            # and decoding them would cost what the cache is there to save.
            pixels=not cfg.data.latents,
            # jpeg-source stores: nvJPEG on this rank's GPU (also in DataLoader workers)
            decode_device=str(self.device),
            # uint8 stores: the workers only gather bytes (and flip them), this rank makes
            # them floats and rotates them on its device (to_model_pixels).
            pixel_dtype=self._pixel_dtype(store))
        self.pixel_range, self.augment = dataset.pixel_range, augment
        self.pixel_transfer = dataset.pixel_dtype if dataset.pixels else None
        facts = DataFacts.of(dataset, cfg.data, split, shared=shared)
        self.validation = (validation_dataset(cfg, dataset, split, rank=env.rank,
                                              world_size=env.world_size)
                           if cfg.run.eval_every else None)
        self.best = BestTracker(cfg.run.early_stopping.patience, cfg.run.early_stopping.min_delta)
        # Every rank builds the same initial weights (ZeRO-3 partitions each rank's own copy).
        torch.manual_seed(cfg.run.seed)
        self.family: ModelFamily = family_for(cfg, data=facts, device=self.device,
                                              dtype=torch_dtype(cfg.zero.precision))
        self.family.partition = partitioned_build(cfg.zero, micro_batch_size=cfg.run.micro_batch_size)
        module = self.family.build()
        trainable = [p for p in module.parameters() if p.requires_grad]
        self.num_params = {kind: sum(getattr(p, "ds_numel", p.numel()) for p in module.parameters()
                                     if p.requires_grad == (kind == "trainable"))
                           for kind in ("trainable", "frozen")}
        if not trainable:
            raise ValueError(f"{self.family.describe()}: the model has no trainable parameters")
        optimizer = build_adamw(self.family.parameter_groups(module), cfg.optim,
                                device=self.device, offload=cfg.zero.offload_optimizer)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(
            cfg.optim.schedule, warmup_steps=cfg.optim.warmup_steps,
            max_steps=cfg.run.max_steps, min_ratio=cfg.optim.min_lr_ratio))
        self.engine = build_engine(module, optimizer=optimizer, lr_scheduler=scheduler,
                                   cfg=cfg.zero, micro_batch_size=cfg.run.micro_batch_size)
        averaged = [(name, p) for name, p in self.engine.module.named_parameters()
                    if p.requires_grad]
        self.ema = (ParameterEMA([p for _, p in averaged], names=[n for n, _ in averaged],
                                 decay=cfg.ema.decay, warmup=cfg.ema.warmup)
                    if cfg.ema.enabled else None)
        self.loader = StoreLoader(dataset, num_workers=cfg.data.num_workers)
        self.step = 0
        self.micro_step = 0
        self.window = LossWindow()
        self.resumed_from: int | None = None
        self._saved_step: int | None = None
        self._resume()

    # ------------------------------------------------------------------ collectives

    def _any_rank(self, flag: bool) -> bool:
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def _mean_over_ranks(self, value: float) -> float:
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch_dist.all_reduce(tensor)
        return float(tensor.item()) / self.env.world_size

    # ------------------------------------------------------------------ checkpoints

    def _resume(self) -> None:
        found = resolve_resume(self.checkpoints, self.cfg.run.resume_from_checkpoint)
        if found is None:
            return
        info = found.info
        if info.get("world_size") != self.env.world_size:
            raise ValueError(
                f"checkpoint {found.path} was written by {info.get('world_size')} ranks, this "
                f"job has {self.env.world_size}: ZeRO state is sharded per rank, so resume "
                "with the same number of ranks (or start fresh: resume_from_checkpoint=null)")
        try:
            _, client = self.engine.load_checkpoint(
                str(found.path.parent), tag=found.path.name, load_optimizer_states=True,
                load_lr_scheduler_states=True)
        except RuntimeError as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            if not lines or "state_dict" not in lines[0]:
                raise
            # Weights of another model (run_dir refuses a changed config before this; a
            # checkpoint path from another run can still get here): one line, not pages.
            raise ValueError(f"checkpoint {found.path} does not fit this model ({lines[-1]}); "
                             "resume it with the config it was trained with, or use a new "
                             "run.output_dir") from None
        extra = torch.load(found.path / f"extra-rank-{self.env.rank:05d}.pt", weights_only=False)
        self.loader.load_state_dict(extra["loader"])
        if extra.get("log_window") is not None:  # checkpoints of older versions have none
            self.window.load_state_dict(extra["log_window"])
        if self.ema is not None:
            if extra.get("ema") is None:
                raise ValueError(f"{found.path} has no EMA state but ema.enabled is true")
            self.ema.load_state_dict(extra["ema"])
        if extra.get("validation") is not None:
            self.best.load_state_dict(extra["validation"])
            if self.env.is_main and self.cfg.run.keep_best:  # killed between save and naming
                name_best(self.best, self.checkpoints)
        self.step, self.micro_step = int(client["step"]), int(client["micro_step"])
        self.resumed_from = self._saved_step = self.step
        if self.env.is_main:
            print(f"resumed from {found.path} (step {self.step})", flush=True)

    def save_checkpoint(self) -> Path:
        path = checkpoint_dir(self.checkpoints, self.step)
        self.engine.save_checkpoint(str(self.checkpoints), tag=path.name, save_latest=False,
                                    client_state={"step": self.step,
                                                  "micro_step": self.micro_step})
        torch.save({"loader": self.loader.state_dict(),
                    "ema": self.ema.state_dict() if self.ema else None,
                    "log_window": self.window.state_dict(),
                    "validation": self.best.state_dict()},
                   path / f"extra-rank-{self.env.rank:05d}.pt")
        torch_dist.barrier()
        if self.env.is_main:
            mark_complete(path, self.step, world_size=self.env.world_size,
                          zero_stage=self.cfg.zero.stage, family=self.family.describe())
            prune(self.checkpoints, self.cfg.run.checkpoints_total_limit)
        torch_dist.barrier()
        self._saved_step = self.step
        return path

    def validate(self, log: Any) -> None:
        """The validation loss now, on every rank, of the weights samples and the export
        use (the EMA's when kept), logged; a new best is saved and named."""
        whole_set = self.family.whole_set_validation
        with self._ema_weights():
            self.engine.module.eval()
            found = (measure_rank if whole_set else validate_rank)(
                self.family, self.engine, self.validation, self.cfg.run.seed)
            self.engine.module.train()
        if whole_set:
            per_rank: list[Any] = [None] * self.env.world_size
            torch_dist.all_gather_object(per_rank, found)
            measured = in_store_order(per_rank)
            totals = whole_set_totals(self.family, measured,
                                      sum(len(index) for index, _ in per_rank))
        else:
            totals = {name: self._mean_over_ranks(value) * self.env.world_size
                      for name, value in sorted(found.items())}
        improved = self.best.update(self.step, totals["loss"] / max(totals["items"], 1.0))
        log.write(self.step, as_row(totals, self.best))
        if improved and self.cfg.run.keep_best:
            if self._saved_step != self.step:
                self.save_checkpoint()
            if self.env.is_main:
                name_best(self.best, self.checkpoints)

    # ------------------------------------------------------------------ weights out

    def _ema_weights(self):
        import contextlib

        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def consolidated_state_dict(self) -> dict[str, torch.Tensor] | None:
        """Whole weights of the trainable module on rank 0 (a collective under ZeRO-3),
        the EMA's when one is kept, as copies that nothing later overwrites.

        Copies, because on a CPU rank `tensor.cpu()` returns the parameter itself: a
        state dict taken inside the EMA swap and exported after it held the live weights
        again (the bug behind exports that were not the model the run sampled with).
        Under stages 0-2 the EMA's float32 averages go in directly; under stage 3 they
        are swapped into the partitions and gathered, in the module's dtype."""
        from hpc.zero import gathered_state_dict

        trainable_only = self.family.export_scope() == "trainable"
        if self.cfg.zero.stage == 3:
            with self._ema_weights():
                return gathered_state_dict(self.engine.module, is_main=self.env.is_main,
                                           trainable_only=trainable_only)
        if not self.env.is_main:
            return None
        keep = ({name for name, p in self.engine.module.named_parameters() if p.requires_grad}
                if trainable_only else None)
        state = {k: v.detach().to("cpu", copy=True)
                 for k, v in self.engine.module.state_dict().items() if keep is None or k in keep}
        if self.ema is not None:
            averages = self.ema.named_shadow()
            unknown = sorted(set(averages) - set(state))
            if unknown:
                raise RuntimeError(f"EMA names not in the module's state dict: {unknown[:3]}")
            state.update(averages)
        return state

    def write_samples(self, weights_step: int | None = None) -> Path | None:
        """A grid of samples from the current (EMA, if kept) weights, written by rank 0;
        `weights_step`: those weights are an earlier step's (the best checkpoint's), and the
        grid is named after it (samples/best-step-N.png).

        Under ZeRO-3 every rank runs the sampling: each forward pass all-gathers the
        partitioned parameters, a collective that rank 0 cannot do alone. The seeds
        are fixed, so all ranks draw the same images.
        """
        from galaxy_hpc.train.samples import grid_columns, write_grid, write_recipe

        path = None
        sampling_ranks_all = self.cfg.zero.stage == 3
        with self._ema_weights():
            if self.env.is_main or sampling_ranks_all:
                self.engine.module.eval()
                images = self.family.sample(self.engine.module, self.cfg.run.num_samples,
                                            seed=self.cfg.run.seed)
                self.engine.module.train()
                if self.env.is_main:
                    name = (f"best-step-{weights_step:08d}" if weights_step is not None
                            else f"step-{self.step:08d}")
                    path = write_grid(images, self.out / "samples" / f"{name}.png",
                                      columns=grid_columns(len(images)))
                    if self.log is not None:
                        self.log.image(self.step, "samples", path)
                    recipe = self.family.sample_recipe(self.cfg.run.num_samples,
                                                       seed=self.cfg.run.seed)
                    if recipe is not None:
                        write_recipe(path, {**recipe, "step": weights_step or self.step,
                                            "ema": self.ema is not None,
                                            "grid_columns": grid_columns(len(images))})
        torch_dist.barrier()
        return path

    def export(self) -> str | None:
        state = self.consolidated_state_dict()
        written = self.family.export(state, self.out) if self.env.is_main else None
        torch_dist.barrier()
        return str(written) if written else None

    # ------------------------------------------------------------------ the loop

    def run(self) -> TrainResult:
        from tqdm import tqdm

        from galaxy_hpc.train.metrics import RunLog, Throughput, memory_report, peak_flops

        cfg, env = self.cfg, self.env
        gas = cfg.zero.gradient_accumulation_steps
        if env.is_main:  # training really starts: the folder now holds this config's run
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out / run_dir.CONFIG_FILE)
            run_dir.forget_result(self.out)
        # A pending window at the resume step means its row (if any) ended a shorter run
        # with a partial average; this run logs that window in full (metrics.RunLog).
        log = self.log = RunLog(
            self.out, enabled=env.is_main, loggers=cfg.run.loggers, wandb=cfg.run.wandb,
            config=to_dict(cfg) if env.is_main else None, resume_step=self.step,
            drop_row_at_resume=len(self.window) > 0 and self.step < cfg.run.max_steps)
        meter = Throughput()
        flops_per_image = None
        device_name = torch.cuda.get_device_name() if self.device.type == "cuda" else None
        peak = peak_flops(device_name, cfg.zero.precision)
        last_loss: float | None = None
        rate: float | None = None
        preempted = False
        stopped = self.best.should_stop  # early stopping decided before a resume
        bar = tqdm(total=cfg.run.max_steps, initial=self.step, desc="train", unit="step",
                   disable=not env.is_main, dynamic_ncols=True)
        self.engine.module.train()
        with PreemptionWatch() as watch:
            while self.step < cfg.run.max_steps and not preempted and not stopped:
                self.loader.set_epoch(self.loader.epoch)
                for batch in self.loader:
                    torch.manual_seed(step_seed(cfg.run.seed, self.micro_step, env.rank))
                    batch = self.family.prepare_batch(self._model_pixels(batch))
                    if flops_per_image is None and peak is not None:
                        flops_per_image, loss, parts = self._counted_micro_step(batch)
                    else:
                        loss, parts = _split(self.engine(batch))
                        self.engine.backward(loss)
                        self.engine.step()
                    self.window.add(float(loss.detach().float().item()),
                                    {name: float(value.float().item())
                                     for name, value in parts.items()})
                    self.micro_step += 1
                    meter.add(self.family.images_in(batch) * env.world_size)
                    if self.micro_step % gas:
                        continue
                    self.step += 1
                    bar.update(1)
                    if self.ema is not None and self.step % cfg.ema.update_every == 0:
                        self.ema.update()
                    on_grid = self.step % cfg.run.log_every == 0
                    if on_grid or self.step == cfg.run.max_steps:
                        means = {name: self._mean_over_ranks(value)
                                 for name, value in self.window.means().items()}
                        last_loss = means.pop("loss")
                        if on_grid:  # an end-of-run window stays open for a longer rerun
                            self.window.clear()
                        rate, _ = meter.read_and_reset()
                        values = {"loss": last_loss, "lr": self.engine.get_lr()[0],
                                  "images_per_s": rate, "epoch": self.loader.epoch, **means}
                        norm = self.engine.get_global_grad_norm()
                        if norm is not None:
                            values["grad_norm"] = float(norm)
                        if flops_per_image and peak:
                            values["mfu"] = rate * flops_per_image / (peak * env.world_size)
                        log.write(self.step, values)
                        bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{rate:.1f}")
                    if cfg.run.eval_every and self.step % cfg.run.eval_every == 0:
                        started = time.perf_counter()
                        self.validate(log)
                        meter.skip(time.perf_counter() - started)
                        stopped = self.best.should_stop
                    if cfg.run.sample_every and self.step % cfg.run.sample_every == 0:
                        self.write_samples()
                    if watch.should_stop(self._any_rank):
                        self.save_checkpoint()
                        preempted = True
                        break
                    if self.step % cfg.run.checkpoint_every == 0 and self._saved_step != self.step:
                        self.save_checkpoint()
                    if self.step >= cfg.run.max_steps or stopped:
                        break
                else:  # a whole pass: the next one is a new epoch (order, augmentation)
                    self.loader.set_epoch(self.loader.epoch + 1)
            bar.close()
            if preempted:
                log.close()
                result = TrainResult(False, str(self.out), self.step, cfg.run.max_steps, True,
                                     None, last_loss, rate, self.resumed_from)
                if watch.wants_requeue:
                    # Said before the requeue: `scontrol requeue` ends this job step, and
                    # whatever the caller would have printed afterwards is lost.
                    result.announced = env.is_main
                    if env.is_main:
                        print(result.summary(), flush=True)
                    watch.requeue(rank=env.rank)  # under submitit this exits the process
                return result
        if self._saved_step != self.step:
            self.save_checkpoint()
        exported_step = self._load_best() if cfg.run.export_weights == "best" else None
        self.write_samples(weights_step=exported_step)
        artifact = self.export()
        log.close()
        if last_loss is None:  # resumed at max_steps: nothing trained, the run's last window
            last_loss = self._final_row(log)
        result = TrainResult(True, str(self.out), self.step, cfg.run.max_steps, False, artifact,
                             last_loss, rate, self.resumed_from,
                             memory=memory_report(self.env, self.device, self.num_params, cfg.zero,
                                                  ema=self.ema is not None),
                             validation=validation_result(self.best, self.checkpoints, stopped)
                             if cfg.run.eval_every else None,
                             exported_step=exported_step,
                             pixel_transfer=self.pixel_transfer)
        return result

    def _load_best(self) -> int | None:
        """The weights (and EMA) of the kept best checkpoint in place of the last ones, for
        the final grid and the export; the step they are of, or None when that is the last
        step or no best was kept (no validation ran: the last weights are exported)."""
        from hpc.checkpoint import best_checkpoint

        found = best_checkpoint(self.checkpoints)
        if found is None or found.step == self.step:
            if found is None and self.env.is_main:
                print("run.export_weights=best: no best checkpoint was kept (no validation "
                      "ran); exporting the last weights", file=sys.stderr, flush=True)
            return None
        # The whole state, as a resume loads it: under ZeRO-3 the weights live in the
        # optimizer's partitions, and DeepSpeed's module-only load of a tagged stage-3
        # checkpoint looks for a `latest` file this loop does not write. Nothing trains
        # after this, so the optimizer state it also restores is never used.
        self.engine.load_checkpoint(str(found.path.parent), tag=found.path.name,
                                    load_optimizer_states=True, load_lr_scheduler_states=True)
        if self.ema is not None:
            extra = torch.load(found.path / f"extra-rank-{self.env.rank:05d}.pt",
                               weights_only=False)
            self.ema.load_state_dict(extra["ema"])
        if self.env.is_main:
            print(f"exporting the best checkpoint's weights: {found.path} (step {found.step}, "
                  f"val_loss {self.best.best_loss:.6g})", file=sys.stderr, flush=True)
        return found.step

    def _final_row(self, log: Any) -> float | None:
        """A run resumed at max_steps (stopped before its export, or preempted exactly
        there) logs the end-of-run row it may not have written, from the saved window."""
        if not len(self.window):
            return run_dir.last_logged_loss(log.path) if self.env.is_main else None
        means = {name: self._mean_over_ranks(value) for name, value in self.window.means().items()}
        if log.last_step() != self.step:
            log.write(self.step, {**means, "lr": self.engine.get_lr()[0],
                                  "epoch": self.loader.epoch})
        return means["loss"]

    def _pixel_dtype(self, store: Any) -> str:
        """data.pixel_transfer resolved for this rank: uint8 batches from uint8 stores where
        the conversion (and any rotation) is better done on the device than in workers."""
        from galaxy_hpc.data.dataset import StoreDataset

        choice = self.cfg.data.pixel_transfer
        if choice == "auto":
            choice = ("uint8" if self.device.type == "cuda" or self.cfg.data.num_workers == 0
                      else "float32")
        return "uint8" if choice == "uint8" and StoreDataset.uint8_possible(store) else "float32"

    def _model_pixels(self, batch: dict[str, Any]) -> dict[str, Any]:
        """uint8 pixel_values (the dataset's pixel_dtype="uint8") as floats on this rank's
        device, augmented there when the dataset left it the draws: what the float path
        would have handed the family."""
        from galaxy_hpc.data.dataset import to_model_pixels

        pixels = batch.get("pixel_values")
        if pixels is not None and pixels.dtype == torch.uint8:
            batch = dict(batch)
            params = batch.pop("augment_params", None)
            batch["pixel_values"] = to_model_pixels(
                pixels, self.pixel_range, device=self.device,
                augment=self.augment if params is not None else None, augment_params=params)
        return batch

    def _counted_micro_step(self, batch: dict[str, Any]) -> tuple[float, torch.Tensor, dict]:
        """One micro-step whose forward and backward FLOP are counted by torch: (FLOP per
        image, loss). Done once, on GPUs, for the MFU."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            loss, parts = _split(self.engine(batch))
            self.engine.backward(loss)
        self.engine.step()
        return counter.get_total_flops() / max(self.family.images_in(batch), 1), loss, parts


def _split(output: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A family's forward returns the loss, or (loss, {term name: value}) to log its terms."""
    if isinstance(output, tuple):
        loss, parts = output
        return loss, dict(parts)
    return output, {}
