"""The DINOv2 vote-fraction regressor as a training family (`kind: train_dino`).

Stages, as Galaxy Sommelier trains:
- head: the backbone is frozen and stays outside the trained module; `prepare_batch`
  runs it without gradients and the module is the head alone (no backward through
  the backbone, nothing of it in the optimizer or the ZeRO partitions);
- full: backbone and head in the module, all trained;
- lora: backbone with peft LoRA adapters (only they train) and the head.
A later stage starts from an earlier one's predictor folder (model.init_from).

Batches come from the loop's StoreDataset (rotations by any angle and flips when
data.augment is on); targets are looked up by store index (targets.py). The held-out
items are the shared split (data.validation_fraction): the loop's dataset never reads
them for training, and validates on them every run.eval_every steps. At the end
`export` writes the predictor folder, and once training is over `evaluate_export`
loads it back through load_vote_predictor and evaluates it on them (metrics.json, a
PNG per question).

Export: `<output_dir>/predictor` (predictor.py), and `<output_dir>/eval/`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galaxy_hpc.models.dino.config import SOURCES_HINT
from galaxy_hpc.models.dino.network import (
    VoteEncoder,
    VoteHead,
    VoteRegressor,
    add_lora,
    load_backbone,
    pixel_normalisation,
    tiny_backbone,
)
from galaxy_hpc.models.dino.predictor import METRICS_FILE, load_regressor, save_predictor
from galaxy_hpc.data.split import RULE
from galaxy_hpc.models.dino.targets import read_targets
from galaxy_hpc.models.dino.tree import (
    dirichlet_multinomial_nll,
    question_matrix,
    tree_cross_entropy,
    tree_softmax,
)
from galaxy_hpc.models.contract import ModelFamily


class VoteTrainModule(torch.nn.Module):
    """forward(batch) -> (loss, {"mae": ...}). With `encoder` None (head stage) the batch
    brings backbone `features`; otherwise `pixel_values`."""

    def __init__(self, head: VoteHead, encoder: VoteEncoder | None, *, loss: str) -> None:
        super().__init__()
        self.head = head
        self.encoder = encoder
        self.loss = loss

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        features = batch["features"] if self.encoder is None else self.encoder(
            batch["pixel_values"])
        dtype = next(self.head.parameters()).dtype
        return self.head(features.to(dtype)).float()

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.logits(batch)
        fractions, reach, weight = batch["fractions"], batch["reach"], batch["weight"]
        if self.loss == "dirichlet_multinomial":
            per_galaxy = dirichlet_multinomial_nll(logits, batch["counts"])
        else:
            per_galaxy = tree_cross_entropy(logits, fractions, reach)
        loss = (per_galaxy * weight).sum() / weight.sum().clamp(min=1.0)
        with torch.no_grad():  # each answer weighted by how far its question was reached
            answer_reach = reach @ question_matrix(reach.device).T * weight[:, None]
            error = (tree_softmax(logits) - fractions).abs()
            mae = (error * answer_reach).sum() / answer_reach.sum().clamp(min=1e-6)
        return loss, {"mae": mae.detach()}


def _input_size(model: Any, store_side: int, patch: int) -> int:
    size = model.input_size if model.input_size is not None else store_side
    if size < patch:
        raise ValueError(f"input_size {size} is smaller than the backbone's patch size {patch}")
    return size - size % patch


class DinoFamily(ModelFamily):
    def build(self) -> torch.nn.Module:
        cfg, model = self.cfg, self.cfg.model
        channels, height, width = self.store.spec.image_shape
        if height != width:
            raise ValueError(f"{self.store.path}: images are {height}x{width}; the regressor "
                             "needs square images (ingest with --size S)")
        self.image_size = height
        self.targets = read_targets(self.store, suffix=model.target_suffix, loss=model.loss)
        split = self.data.split
        if split is None or not len(split.heldout) or not len(split.train):
            held = 0 if split is None else len(split.heldout)
            raise ValueError(f"data.validation_fraction {cfg.data.validation_fraction} holds "
                             f"out {held} of the store's {len(self.store)} items; the "
                             "regressor needs some of each")
        self.heldout = split.mask
        self.init_manifest: dict[str, Any] | None = None
        if model.init_from:
            regressor, self.init_manifest = load_regressor(model.init_from)
            self._check_init(self.init_manifest)
            backbone, head = regressor.encoder.backbone, regressor.head
        elif model.backbone:
            backbone, head = load_backbone(model.backbone), None
        elif model.tiny is not None:
            backbone = tiny_backbone(model.tiny, num_channels=channels, image_size=height)
            head = None
        else:
            raise ValueError(f"model: {SOURCES_HINT}")
        if backbone.config.num_channels != channels:
            raise ValueError(f"the backbone takes {backbone.config.num_channels}-band images, "
                             f"the store {self.store.path} has {channels} bands")
        mean, std = pixel_normalisation(channels)
        encoder = VoteEncoder(backbone, input_size=_input_size(
            model, height, backbone.config.patch_size), pixel_mean=mean, pixel_std=std)
        if head is None:
            head = VoteHead(encoder.feature_dim, model.head.hidden_dim, model.head.dropout)
        if cfg.run.gradient_checkpointing and model.stage != "head":
            backbone.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
        self.backbone_config = backbone.config.to_dict()
        self.head_config = dict(head.config)
        self.input_size = encoder.input_size
        self.frozen: VoteEncoder | None = None
        if model.stage == "head":
            # Kept in float32 for export; the copy on the device may be bf16.
            self._backbone_state = {k: v.detach().clone().float()
                                    for k, v in backbone.state_dict().items()}
            self.frozen = encoder.requires_grad_(False).eval().to(self.device)
            if self.dtype != torch.float32:
                self.frozen.to(self.dtype)
            return VoteTrainModule(head, None, loss=self.targets.loss)
        if model.stage == "lora":
            backbone.requires_grad_(False)
            encoder.backbone = add_lora(backbone, model.lora)
        return VoteTrainModule(head, encoder, loss=self.targets.loss)

    def _check_init(self, manifest: dict[str, Any]) -> None:
        """A later stage should hold out what the earlier one held out."""
        ours = {"fraction": self.cfg.data.validation_fraction,
                "seed": self.cfg.data.validation_seed, "store_checksum": self.store.checksum}
        theirs = {k: manifest.get("heldout", {}).get(k) for k in ours}
        if ours != theirs:
            print(f"warning: model.init_from {self.cfg.model.init_from} was trained with a "
                  f"different held-out split ({theirs}, here {ours}): this stage may train on "
                  "galaxies the earlier stage was evaluated on", file=sys.stderr)

    # ------------------------------------------------------------------ batches

    @torch.no_grad()
    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = batch["index"].numpy()
        pixels = batch["pixel_values"].to(self.device)
        out: dict[str, Any] = {
            "index": batch["index"],
            "weight": torch.ones(len(rows), device=self.device),
            "fractions": torch.from_numpy(self.targets.fractions[rows]).to(self.device),
            "reach": torch.from_numpy(self.targets.reach[rows]).to(self.device)}
        if self.targets.counts is not None:
            out["counts"] = torch.from_numpy(self.targets.counts[rows]).to(self.device)
        if self.frozen is not None:
            out["features"] = self.frozen(pixels)
        else:
            out["pixel_values"] = pixels
        return out

    # ------------------------------------------------------------------ samples

    @torch.no_grad()
    def sample(self, module: torch.nn.Module, num_images: int, seed: int) -> np.ndarray:
        """Held-out galaxies ordered by predicted smooth fraction, most featured first: a
        grid that shows whether the model ranks morphology. (No randomness: `seed` unused.)"""
        from galaxy_hpc.models.display import to_display

        candidates = np.flatnonzero(self.heldout)[: 4 * num_images]
        pixels = torch.from_numpy(np.asarray(
            self.stretch.forward(self.store.read_images_at(candidates)), dtype=np.float32))
        batch = {"pixel_values": pixels.to(self.device)}
        if self.frozen is not None:
            batch = {"features": self.frozen(batch["pixel_values"])}
        smooth = tree_softmax(module.logits(batch))[:, 0].cpu().numpy()
        ranked = np.argsort(smooth, kind="stable")
        chosen = ranked[np.linspace(0, len(ranked) - 1, min(num_images, len(ranked)))
                        .round().astype(int)]
        return to_display(pixels[chosen].numpy(), flux=self.store.spec.image_dtype != "uint8")

    # ------------------------------------------------------------------ export

    def _regressor(self, state_dict: dict[str, torch.Tensor]) -> VoteRegressor:
        """The trained network rebuilt on the CPU in float32 from the loop's state dict."""
        from transformers import Dinov2Config, Dinov2Model

        backbone = Dinov2Model(Dinov2Config.from_dict(self.backbone_config))
        model = self.cfg.model
        if model.stage == "lora":
            backbone = add_lora(backbone, model.lora)
        mean, std = pixel_normalisation(self.store.spec.image_shape[0])
        encoder = VoteEncoder(backbone, input_size=self.input_size, pixel_mean=mean,
                              pixel_std=std)
        head = VoteHead(**self.head_config)
        floats = {k: v.float() for k, v in state_dict.items()}
        head.load_state_dict({k[len("head."):]: v for k, v in floats.items()
                              if k.startswith("head.")}, strict=True)
        if model.stage == "head":
            backbone.load_state_dict(self._backbone_state, strict=True)
        else:
            prefix = "encoder.backbone."
            backbone.load_state_dict({k[len(prefix):]: v for k, v in floats.items()
                                      if k.startswith(prefix)}, strict=True)
        return VoteRegressor(encoder, head).eval()

    def export(self, state_dict: dict[str, torch.Tensor], output_dir: Path) -> Path:
        model = self.cfg.model
        manifest = {
            "image_size": self.image_size, "stretch": self.stretch.to_dict(),
            "answer_columns": self.targets.columns, "loss": self.targets.loss,
            "stage": model.stage, "target_suffix": model.target_suffix,
            "trained_on": {"store": str(self.store.path), "checksum": self.store.checksum,
                           "num_items": len(self.store)},
            "heldout": {"fraction": self.cfg.data.validation_fraction,
                        "seed": self.cfg.data.validation_seed,
                        "store_checksum": self.store.checksum, "rule": RULE},
            "init_from": model.init_from}
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # rank 0's terminal: the loop's bar only
        return save_predictor(Path(output_dir) / "predictor", self._regressor(state_dict),
                              manifest)

    def evaluate_export(self, artifact: Path, output_dir: Path) -> dict[str, Any]:
        """Held-out metrics of the exported folder, opened as any user opens it: its
        metrics.json, and predictions and a plot per question in <output_dir>/eval."""
        folder, eval_dir = Path(artifact), Path(output_dir) / "eval"
        from galaxy_hpc.models.dino.metrics import (
            mean_fractions,
            plot_true_vs_predicted,
            summary_line,
            vote_metrics,
        )
        from galaxy_hpc.models.store_predictions import predict_store
        from galaxy_hpc.models.vote_predictor import load_vote_predictor

        settings = self.cfg.model.heldout
        predictor = load_vote_predictor(folder, device=self.device)
        indices = np.flatnonzero(self.heldout)[: settings.max_items]
        predicted = predict_store(predictor, self.store, indices=indices,
                                  batch_size=settings.batch_size)
        true = self.targets.fractions[indices]
        metrics = vote_metrics(true, predicted, min_reach=settings.min_reach)
        # What knowing only the training set's average fractions scores (metrics.py).
        average = mean_fractions(self.targets.fractions[~self.heldout], settings.min_reach)
        baseline = vote_metrics(true, np.broadcast_to(average, true.shape),
                                min_reach=settings.min_reach)
        metrics["constant_baseline"] = {"overall": baseline["overall"],
                                        "questions": {k: {m: v[m] for m in ("r", "r2", "mae")}
                                                      for k, v in baseline["questions"].items()}}
        metrics["split"] = {"num_heldout": int(self.heldout.sum()),
                            "num_evaluated": int(len(indices)), "num_items": len(self.store),
                            "store": str(self.store.path)}
        (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        eval_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(eval_dir / "heldout_predictions.npz", index=indices, true=true,
                            predicted=predicted)
        plot_true_vs_predicted(true, predicted, eval_dir / "true_vs_predicted.png",
                               min_reach=settings.min_reach, title=self.describe())
        print(f"{summary_line(metrics)}; {folder / METRICS_FILE}", flush=True)
        return {"metrics": str(folder / METRICS_FILE), "overall": metrics.get("overall")}

    def describe(self) -> str:
        model = self.cfg.model
        loss = getattr(getattr(self, "targets", None), "loss", model.loss)
        return f"dino-{model.stage} ({loss}, held out {self.cfg.data.validation_fraction:g})"

