"""The `encode` job: a uint8 RGB store's latent distributions under Stable Diffusion's VAE.

    galaxy-hpc encode STORE --model SD_FOLDER --out LATENTS
    mpiexec -n 4 galaxy-hpc encode STORE --model SD_FOLDER --out LATENTS

For every item and each of the 8 rotations and flips that are exact on the pixel grid,
the VAE encoder's posterior mean and log-variance go into a latent store beside STORE,
item for item (layout in galaxy_hpc/data/latents.py), so that training draws a fresh
latent sample each epoch without running the encoder. Rotation by any angle is not
cached (a bilinear resampling, a continuum of images): training from these latents
augments with the 8 exact transforms only, and refuses `data.augment: true`.

Pixels go to the VAE as training would feed them (the store's stretch, [-1, 1]); each
shard is encoded in fixed batches in item order, so the bytes do not depend on the number
of ranks. Like `synth`: rank 0 creates the store, every rank encodes every K-th pending
shard, rank 0 finalizes after a barrier; a killed job rerun with the same command encodes
only the shards without a completion record. What decides the bytes (the training store's
checksum, the VAE's fingerprint, the batch size) is the store's `encode_fingerprint`: a
rerun with other inputs is refused with the differences listed; `overwrite` starts over.

Text: with a caption column, rank 0 also runs the frozen text encoder once per distinct
caption (and for "", the dropped caption) into `<LATENTS>.text.npz`; training uses it
when captions are fixed strings (data.shuffle_caption_tags: false), and encodes shuffled
ones per step. More than `max_captions` distinct captions (free text) are not cached.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

FINGERPRINT_VERSION = 1


@dataclass
class EncodeConfig:
    """Cache the VAE latent distributions (and caption embeddings) of a training store."""

    store: str  # the uint8 RGB training store to encode
    # A Stable Diffusion folder in diffusers layout (its vae/, text_encoder/), or its
    # Hugging Face id in the local cache.
    model: str
    out: str  # the latent store to write (data.latents of the training config)
    # null: from the suffix of out (.h5/.hdf5: hdf5, .zarr: zarr), zarr without one.
    format: Literal["zarr", "hdf5"] | None = None
    batch_size: int = 16  # images through the encoder at once (each shard in fixed batches)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: this rank's GPU when there is one
    text: bool = True  # cache text encoder states per distinct caption
    caption_column: str = "caption"  # the store's captions, for the text cache
    max_captions: int = 20000  # more distinct captions than this are not cached (~236 KB each)
    overwrite: bool = False  # delete a latent store already at out and encode again

    def __post_init__(self) -> None:
        from hpc.store import backend_for_path

        for name in ("store", "model", "out"):
            if not getattr(self, name):
                raise ValueError(f"encode needs {name}: galaxy-hpc encode STORE --model "
                                 "SD_FOLDER --out LATENTS")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.format = backend_for_path(self.out, self.format)


@dataclass
class EncodeSummary:
    out: str
    num_items: int
    checksum: str
    num_ranks: int
    seconds: float
    shards_total: int = 0
    shards_encoded: list[int] = field(default_factory=list)  # by every rank, in this run
    text_captions: int | None = None  # distinct captions cached; None: none cached
    already_complete: bool = False

    def line(self) -> str:
        from hpc.store.writer import format_shards

        text = (f"; {self.text_captions} caption embeddings in {self.out}.text.npz"
                if self.text_captions is not None else "")
        if self.already_complete:
            return (f"{self.out} was already complete: latents of {self.num_items:,} items, "
                    f"checksum {self.checksum}; nothing to do")
        done = len(self.shards_encoded)
        resumed = (f"resumed: encoded shards {format_shards(self.shards_encoded)} ({done} of "
                   f"{self.shards_total}; the others were complete); "
                   if done < self.shards_total else "")
        rate = 8 * self.num_items * done / max(self.shards_total, 1) / self.seconds \
            if self.seconds else 0.0
        return (f"{resumed}wrote latents of {self.num_items:,} items x 8 transforms to "
                f"{self.out} ({self.num_ranks} rank(s), {self.seconds:.1f} s, {rate:,.0f} "
                f"encodes/s){text}; checksum {self.checksum}")


def _device(cfg: EncodeConfig, rank: int) -> Any:
    import torch

    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", rank % torch.cuda.device_count())


def _load(cfg: EncodeConfig) -> Any:
    from galaxy_hpc.models.sd.components import load_components

    parts = load_components(cfg.model)
    parts.vae.requires_grad_(False).eval()
    parts.text_encoder.requires_grad_(False).eval()
    return parts


def _fingerprint(cfg: EncodeConfig, source: Any, vae_fingerprint: str) -> dict[str, Any]:
    return {"version": FINGERPRINT_VERSION, "source_checksum": source.checksum,
            "vae": vae_fingerprint, "batch_size": cfg.batch_size, "format": cfg.format}


def _prepare(cfg: EncodeConfig, source: Any, parts: Any, vae_fingerprint: str) -> dict[str, Any]:
    """Rank 0: start over, refuse another encoding's store, or create/reopen the store."""
    from galaxy_hpc.data.latents import ATTRS_KEY, NUM_TRANSFORMS
    from hpc.hub import resolve_weights
    from hpc.outputs import claim_output
    from hpc.provenance import command_record
    from hpc.store import StoreSpec, create_store

    vae = parts.vae
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    channels, height, width = source.spec.image_shape
    if source.spec.image_dtype != "uint8" or channels != 3:
        raise ValueError(f"{source.path}: encode needs a uint8 RGB store (3 channels), "
                         f"this one holds {channels} x {source.spec.image_dtype}")
    if height != width or height % factor:
        raise ValueError(f"{source.path}: images {height}x{width} must be square (rotations) "
                         f"with sides a multiple of {factor} (the VAE's downsampling)")
    wanted = _fingerprint(cfg, source, vae_fingerprint)
    claim_output(cfg.out, wanted, key="encode_fingerprint", what="latents of galaxy-hpc encode",
                 overwrite=cfg.overwrite)
    spec = StoreSpec(image_shape=(NUM_TRANSFORMS * 2 * vae.config.latent_channels,
                                  height // factor, width // factor),
                     image_dtype="float32", shard_size=source.spec.shard_size,
                     backend=cfg.format)
    vae_path = str(Path(resolve_weights(cfg.model, field="model")).resolve())
    attrs = {"source": "galaxy-hpc encode", **command_record(),
             "encode_fingerprint": wanted,
             ATTRS_KEY: {"source": {"path": str(source.path), "checksum": source.checksum},
                         "vae": {"path": vae_path,
                                 "fingerprint": vae_fingerprint},
                         "scaling_factor": float(vae.config.scaling_factor),
                         "transforms": "k < 4: k quarter turns counter-clockwise; k >= 4: a "
                                       "left-right flip, then k - 4 quarter turns",
                         "channels": "transform k: mean [2kC, 2kC+C), logvar [2kC+C, 2kC+2C)"}}
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    writer = create_store(cfg.out, spec, num_items=len(source), attrs=attrs)
    complete = writer.manifest.complete
    return {"complete": complete, "checksum": writer.manifest.checksum if complete else None,
            "pending": [] if complete else writer.pending_shards(),
            "num_shards": writer.num_shards}


def encode_images(vae: Any, pixels: Any, batch_size: int) -> np.ndarray:
    """(N, 8 * 2 * C, h, w) float32: mean and log-variance of each of the 8 dihedral
    transforms of `pixels` (N, 3, H, W) in [-1, 1], in fixed batches of `batch_size`."""
    import torch

    from galaxy_hpc.data.latents import NUM_TRANSFORMS, dihedral

    out = []
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]
            per_transform = []
            for k in range(NUM_TRANSFORMS):
                posterior = vae.encode(dihedral(chunk, k)).latent_dist
                per_transform += [posterior.mean, posterior.logvar]
            out.append(torch.cat(per_transform, dim=1).float().cpu().numpy())
    return np.concatenate(out)


def _encode_text(cfg: EncodeConfig, source: Any, parts: Any, device: Any) -> int | None:
    """Rank 0: the text cache beside the store (kept when it is already this one's)."""
    import torch

    from galaxy_hpc.data.latents import TextCache, text_cache_path, write_text_cache
    from galaxy_hpc.models.sd.latent_cache import text_fingerprint

    if not cfg.text or source.spec.columns.get(cfg.caption_column) != "str":
        return None
    captions = sorted(set(source.read_column(cfg.caption_column).tolist()) | {""})
    if len(captions) > cfg.max_captions:
        print(f"encode: {len(captions):,} distinct captions > max_captions "
              f"({cfg.max_captions:,}): no text cache; training encodes them per step",
              file=sys.stderr)
        return None
    fingerprint = text_fingerprint(parts.text_encoder, parts.tokenizer)
    path = text_cache_path(cfg.out)
    if path.is_file() and not cfg.overwrite:
        cached = TextCache(path)
        if cached.fingerprint == fingerprint and set(cached.rows) == set(captions):
            return len(captions)
    tokenizer, encoder = parts.tokenizer, parts.text_encoder.to(device)
    states = []
    with torch.no_grad():
        for start in range(0, len(captions), 64):
            ids = tokenizer(captions[start:start + 64], padding="max_length", truncation=True,
                            max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
            states.append(encoder(ids.to(device))[0].float().cpu().numpy())
    write_text_cache(path, captions, np.concatenate(states), fingerprint)
    return len(captions)



def run_encode(cfg: EncodeConfig, *, progress: bool = True) -> EncodeSummary:
    """Run on every rank (or alone); every rank returns the same summary."""
    import torch
    from tqdm import tqdm

    from galaxy_hpc.data.stretch import stretch_for_store
    from galaxy_hpc.models.sd.latent_cache import module_fingerprint
    from hpc.comm import job_comm, on_root
    from hpc.files import check_writable
    from hpc.outputs import remove_leftovers
    from hpc.store import finalize_store, open_store, open_store_for_writing

    start = time.perf_counter()
    check_writable(cfg.out, "the latent store")
    comm = job_comm()
    source = open_store(cfg.store)
    parts = _load(cfg)
    vae_fingerprint = module_fingerprint(parts.vae)
    device = _device(cfg, comm.rank)
    setup = on_root(comm, lambda: _prepare(cfg, source, parts, vae_fingerprint))
    summary = {"out": str(cfg.out), "num_items": len(source), "num_ranks": comm.size,
               "shards_total": setup["num_shards"], "shards_encoded": setup["pending"]}
    text = on_root(comm, lambda: _encode_text(cfg, source, parts, device))
    if setup["complete"]:
        return EncodeSummary(**summary, checksum=setup["checksum"], text_captions=text,
                             seconds=time.perf_counter() - start, already_complete=True)
    writer = open_store_for_writing(cfg.out)
    stretch = stretch_for_store(source, None)  # the dataset's own: same pixels as training
    vae = parts.vae.to(device)
    mine = setup["pending"][comm.rank::comm.size]
    bar = tqdm(mine, desc=f"encode (rank 0 of {comm.size})", unit="shard",
               disable=not progress or comm.rank != 0, file=sys.stderr)
    for shard in bar:
        first, stop = writer.shard_bounds(shard)
        images = source.read_images(first, stop)
        pixels = np.empty(images.shape, np.float32)
        for k, image in enumerate(images):
            stretch.forward(image, out=pixels[k])
        writer.write_shard(shard, encode_images(vae, torch.from_numpy(pixels).to(device),
                                                cfg.batch_size))
    comm.barrier()

    def finish() -> str:
        checksum = finalize_store(cfg.out)
        remove_leftovers([cfg.out])
        return checksum

    checksum = on_root(comm, finish)
    return EncodeSummary(**summary, checksum=checksum, text_captions=text,
                         seconds=time.perf_counter() - start)
