"""A training run's output folder across reruns of the same command.

The same `galaxy-hpc train CONFIG` is run again after a crash, a preemption, or
to train longer, and it must do the right thing with what the folder holds:

- a folder whose `config.yaml` differs in anything but the settings below is a
  different run: its checkpoints would not load (a state_dict size mismatch
  deep inside DeepSpeed) or, worse, would load into a different experiment.
  That is refused in one line listing the differences, before any model is
  built; `--overwrite` (run.overwrite) deletes that run and starts over.
  Overwrite acts only on a run of *another* config, so a requeued job that
  still carries the flag resumes its own progress instead of erasing it.
- a run already trained to run.max_steps and exported is reported as complete
  (its `train_result.json`), and nothing is trained, sampled or exported again.

Settings that may change on resume (RESUMABLE): how long to train and how
often to log, sample and checkpoint; where the folder is; where the logs go
(run.loggers, run.wandb); the resume and overwrite switches; gradient
checkpointing (memory only, same maths). Any
other change (model, data, optimizer, precision, ZeRO, EMA, seed, batch size)
alters what the checkpoint means and needs a new run.output_dir.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import galaxy_hpc.registry  # noqa: F401  (the train kinds, to read config.yaml)
from hpc.checkpoint import list_checkpoints, resolve_resume
from hpc.config import ConfigError, load_config, to_dict

CONFIG_FILE = "config.yaml"
RESULT_FILE = "train_result.json"
RESUMABLE = (
    "run.max_steps", "run.log_every", "run.sample_every", "run.num_samples",
    "run.checkpoint_every", "run.checkpoints_total_limit", "run.resume_from_checkpoint",
    "run.output_dir", "run.overwrite", "run.loggers", "run.wandb.project", "run.wandb.entity",
    "run.wandb.name", "run.wandb.tags", "run.wandb.mode", "run.gradient_checkpointing",
    "run.eval_every", "run.keep_best", "run.early_stopping.patience",
    "run.early_stopping.min_delta",
)
MAX_SHOWN = 6  # differences listed in the one-line refusal


@dataclass
class TrainResult:
    ok: bool
    output_dir: str
    step: int
    max_steps: int
    preempted: bool
    artifact: str | None
    loss: float | None
    images_per_s: float | None
    resumed_from: int | None
    announced: bool = False  # the summary was printed already (before a requeue)
    already_complete: bool = False  # a rerun found the run trained and exported: did nothing
    # Peak resident memory of each rank, and the model state ZeRO should hold per rank
    # (hpc.zero.expected_state_bytes), in GB.
    memory: dict | None = None
    # What the family's evaluate_export found on the exported artifact (held-out metrics,
    # a consistency report), when it judges one.
    evaluation: dict | None = None
    # With run.eval_every: the lowest validation loss, its step and checkpoint, and
    # whether early stopping ended the run before max_steps.
    validation: dict | None = None
    # The step whose weights were exported, when not `step` (run.export_weights: best).
    exported_step: int | None = None
    # How pixel batches reached the model: "uint8" (made floats on the device) or
    # "float32" (data.pixel_transfer); None when none were read (cached latents).
    pixel_transfer: str | None = None

    def summary(self) -> str:
        if self.already_complete:
            return (f"already complete: {self.output_dir} holds a run trained to step "
                    f"{self.step}/{self.max_steps} (final loss {_number(self.loss)}), model in "
                    f"{self.artifact}; nothing to do (raise run.max_steps to train on)")
        if self.preempted:
            return (f"preempted at step {self.step}/{self.max_steps}: checkpoint saved in "
                    f"{self.output_dir}/checkpoints; the job resumes from it")
        rate = f", {self.images_per_s:,.1f} images/s" if self.images_per_s else ""
        resumed = f" (resumed from step {self.resumed_from})" if self.resumed_from else ""
        best = ""
        if self.validation:
            stop = " (stopped early)" if self.validation.get("stopped_early") else ""
            best = (f"; best validation loss {_number(self.validation.get('best_loss'))} at "
                    f"step {self.validation.get('best_step')}{stop}")
        weights = (f" (the weights of step {self.exported_step})"
                   if self.exported_step is not None else "")
        return (f"trained {self.step} steps{resumed}; final loss {_number(self.loss)}{rate}"
                f"{best}; model in {self.artifact}{weights}; log "
                f"{self.output_dir}/train_log.jsonl")


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4f}"


def prepare(cfg: Any, *, is_main: bool, barrier: Callable[[], None]) -> TrainResult | None:
    """Check `run.output_dir` before anything is built (on every rank, so that every rank
    refuses alike). Returns the stored result when the run is already complete."""
    out = Path(cfg.run.output_dir)
    differences = config_differences(cfg, out)
    if differences and list_checkpoints(out / "checkpoints", complete_only=False):
        if not cfg.run.overwrite:
            shown = "; ".join(differences[:MAX_SHOWN])
            if len(differences) > MAX_SHOWN:
                shown += f"; and {len(differences) - MAX_SHOWN} more"
            raise ValueError(
                f"run.output_dir {out} holds a run of another config ({shown}): train "
                "into a new run.output_dir, or add --overwrite (run.overwrite=true) to delete "
                f"that run and start over (only {', '.join(RESUMABLE)} may change on resume)")
        if is_main:
            _empty_folder(out)
        barrier()
    return completed_result(cfg, out)


def config_differences(cfg: Any, out: Path) -> list[str]:
    """'key: saved -> now' for every setting outside RESUMABLE that differs from the
    folder's config.yaml (read through its schema, so keys added since take defaults)."""
    saved_path = out / CONFIG_FILE
    if not saved_path.is_file():
        return []
    try:
        saved = _flat(to_dict(load_config(saved_path)))
    except (ConfigError, FileNotFoundError) as error:
        return [f"its {CONFIG_FILE} no longer loads ({error})"]
    now = _flat(to_dict(cfg))
    return [f"{key}: {saved.get(key, '(absent)')!r} -> {now.get(key, '(absent)')!r}"
            for key in sorted(set(saved) | set(now), key=_order(saved, now))
            if key not in RESUMABLE and saved.get(key) != now.get(key)]


def completed_result(cfg: Any, out: Path) -> TrainResult | None:
    """The stored result of a run already trained to run.max_steps and exported; None
    when there is training (or the final export) left to do."""
    found = resolve_resume(out / "checkpoints", cfg.run.resume_from_checkpoint)
    if found is None:
        return None
    if found.step > cfg.run.max_steps:
        raise ValueError(
            f"checkpoint {found.path} is at step {found.step}, past run.max_steps="
            f"{cfg.run.max_steps}: raise run.max_steps to train on, or resume an earlier "
            "checkpoint (run.resume_from_checkpoint=PATH), or use a new run.output_dir")
    try:
        result = json.loads((out / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None  # stopped between the last checkpoint and the export: finish those
    stopped_early = bool((result.get("validation") or {}).get("stopped_early"))
    if found.step < cfg.run.max_steps and not stopped_early:
        return None
    artifact = result.get("artifact")
    if result.get("step") != found.step or (artifact and not Path(artifact).exists()):
        return None
    stored = {f.name: result.get(f.name) for f in fields(TrainResult) if f.name in result}
    return TrainResult(**{**stored, "announced": False, "already_complete": True})


def write_result(out: Path, result: dict[str, Any]) -> None:
    """Rank 0, after the export: what a rerun reports when the run is complete."""
    temporary = out / f".{RESULT_FILE}.tmp-{os.getpid()}"
    temporary.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(temporary, out / RESULT_FILE)


def forget_result(out: Path) -> None:
    """Training goes on past a completed run: its result no longer describes the folder."""
    (out / RESULT_FILE).unlink(missing_ok=True)


def last_logged_loss(log_path: Path) -> float | None:
    """The loss of the log's last row, for a rerun that only had the export left."""
    try:
        lines = log_path.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):  # validation rows have no training loss
        if line.strip() and "loss" in json.loads(line):
            return json.loads(line)["loss"]
    return None


def _empty_folder(out: Path) -> None:
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    print(f"galaxy-hpc train: --overwrite: deleted the run of another config in {out}",
          flush=True)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flat(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): data}


def _order(saved: dict[str, Any], now: dict[str, Any]) -> Callable[[str], int]:
    """Differences in the order the config lists its keys."""
    keys = list(now) + [k for k in saved if k not in now]
    return keys.index
