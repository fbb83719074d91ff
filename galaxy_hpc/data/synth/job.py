"""The `synth` job: draw a catalog of synthetic galaxies into a store, on any number of ranks.

The store's size is known up front, so ranks write final shards directly:
rank 0 creates the store, every rank takes every K-th pending shard, and
rank 0 finalizes after a barrier. Because each galaxy depends only on
(seed, index), the store's bytes and checksum are the same for any number of
ranks, and a killed job rerun with the same command redraws only the shards
that were not complete.

What decides the bytes (seed, count, shard size, rendering) is the store's
`synth_fingerprint` attribute: a rerun into an existing store with other settings
is refused with the differences listed (hpc.outputs) rather than leaving the old
galaxies under a message that new ones were drawn; `overwrite` starts over.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from galaxy_hpc.data.synth.config import SynthConfig


def _uint8_galaxies() -> SynthConfig:
    return SynthConfig(output="uint8")


@dataclass
class SynthJobConfig:
    out: str
    num_galaxies: int = 1000
    seed: int = 0
    # null: from the suffix of out (.h5/.hdf5: hdf5, .zarr: zarr), zarr without one;
    # a format that contradicts the suffix is an error (hpc.store.backend_for_path).
    format: Literal["zarr", "hdf5"] | None = None
    shard_size: int = 256
    # A GalaxySD-style caption per galaxy, from its simulated GZ2 votes.
    captions: bool = True
    survey: str = "sdss"
    # Rendering and physics; output "uint8" is an SDSS-like colour JPEG,
    # "float32" linear flux per band (like FITS cutouts).
    galaxy: SynthConfig = field(default_factory=_uint8_galaxies)
    # Delete a store already at `out` (only if it is a store) and draw it again.
    overwrite: bool = False

    def __post_init__(self) -> None:
        from hpc.store import backend_for_path  # here: configs load without zarr/h5py

        if self.num_galaxies < 1:
            raise ValueError(f"num_galaxies must be >= 1, got {self.num_galaxies}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        self.format = backend_for_path(self.out, self.format)


FINGERPRINT_VERSION = 1


@dataclass
class SynthSummary:
    out: str
    num_galaxies: int
    checksum: str
    num_ranks: int
    shards_drawn_here: int
    seconds: float
    shards_total: int = 0
    shards_drawn: list[int] = field(default_factory=list)  # by every rank, in this run
    already_complete: bool = False  # an earlier run finished the store: nothing drawn

    def line(self) -> str:
        from hpc.store.writer import format_shards

        if self.already_complete:
            return (f"{self.out} was already complete: {self.num_galaxies:,} synthetic galaxies, "
                    f"checksum {self.checksum}; nothing to do")
        drawn = len(self.shards_drawn)
        resumed = (f"resumed: drew shards {format_shards(self.shards_drawn)} ({drawn} of "
                   f"{self.shards_total}; the others were complete); "
                   if drawn < self.shards_total else "")
        rate = self.num_galaxies / self.seconds if self.seconds else 0.0
        return (f"{resumed}wrote {self.num_galaxies:,} synthetic galaxies to {self.out} "
                f"({self.num_ranks} rank(s), {self.seconds:.1f} s, {rate:,.0f} galaxies/s); "
                f"checksum {self.checksum}")


def fingerprint(cfg: SynthJobConfig) -> dict[str, Any]:
    """Everything that decides the store's bytes; a rerun into the store must match it."""
    galaxy = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg.galaxy).items()}
    return {"version": FINGERPRINT_VERSION, "num_galaxies": cfg.num_galaxies, "seed": cfg.seed,
            "shard_size": cfg.shard_size, "format": cfg.format, "captions": cfg.captions,
            "survey": cfg.survey if cfg.captions else None, "galaxy": galaxy}


def store_spec(cfg: SynthJobConfig):
    from galaxy_hpc.data.columns import SYNTH_ID, store_column_info
    from galaxy_hpc.data.synth.galaxies import TRUTH_COLUMNS, VOTE_COLUMNS
    from hpc.store import StoreSpec

    columns = {"id": "str"}
    columns.update({name: "float64" for name in TRUTH_COLUMNS})
    columns.update({f"flux_{band}": "float64" for band in cfg.galaxy.bands})
    columns.update({name: "float64" for name in VOTE_COLUMNS})
    if cfg.captions:
        columns["caption"] = "str"
    channels = 3 if cfg.galaxy.output == "uint8" else len(cfg.galaxy.bands)
    return StoreSpec(image_shape=(channels, cfg.galaxy.size, cfg.galaxy.size),
                     image_dtype=cfg.galaxy.output, columns=columns, shard_size=cfg.shard_size,
                     backend=cfg.format,
                     column_info=store_column_info(columns, overrides={"id": SYNTH_ID}))


def _prepare(cfg: SynthJobConfig) -> dict[str, Any]:
    """Rank 0: start over, refuse another synth's store, or create/reopen the store."""
    import galaxy_hpc
    from hpc.outputs import claim_output
    from hpc.provenance import command_record
    from hpc.store import create_store

    wanted = fingerprint(cfg)
    claim_output(cfg.out, wanted, key="synth_fingerprint", what="a store of galaxy-hpc synth",
                 overwrite=cfg.overwrite)
    attrs = {
        "source": "galaxy-hpc synth (GalSim)",
        **command_record(),
        "galaxy_hpc_version": galaxy_hpc.__version__,
        "seed": cfg.seed,
        "synth_config": wanted["galaxy"],
        "synth_fingerprint": wanted,
    }
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    writer = create_store(cfg.out, store_spec(cfg), num_items=cfg.num_galaxies, attrs=attrs)
    complete = writer.manifest.complete
    return {"complete": complete, "checksum": writer.manifest.checksum if complete else None,
            "pending": [] if complete else writer.pending_shards(),
            "num_shards": writer.num_shards}



def run_synth(cfg: SynthJobConfig, *, progress: bool = True) -> SynthSummary:
    """Run on every rank (or alone); every rank returns the same summary."""
    from tqdm import tqdm

    from galaxy_hpc.data.captions import CaptionConfig, Captioner
    from galaxy_hpc.data.synth.galaxies import VOTE_COLUMNS, draw_galaxies
    from hpc.comm import job_comm, on_root
    from hpc.files import check_writable
    from hpc.outputs import remove_leftovers
    from hpc.store import finalize_store, open_store_for_writing

    start = time.perf_counter()
    check_writable(cfg.out, "the store")  # every rank, before any collective
    comm = job_comm()
    setup = on_root(comm, lambda: _prepare(cfg))
    summary = {"out": str(cfg.out), "num_galaxies": cfg.num_galaxies, "num_ranks": comm.size,
               "shards_total": setup["num_shards"], "shards_drawn": setup["pending"]}
    if setup["complete"]:
        return SynthSummary(**summary, checksum=setup["checksum"], shards_drawn_here=0,
                            seconds=time.perf_counter() - start, already_complete=True)
    writer = open_store_for_writing(cfg.out)
    mine = setup["pending"][comm.rank::comm.size]
    captioner = Captioner(CaptionConfig(survey=cfg.survey)) if cfg.captions else None
    bar = tqdm(mine, desc=f"synth (rank 0 of {comm.size})", unit="shard",
               disable=not progress or comm.rank != 0, file=sys.stderr)
    for shard in bar:
        first, stop = writer.shard_bounds(shard)
        images, columns = draw_galaxies(cfg.galaxy, seed=cfg.seed, start=first, count=stop - first)
        if captioner is not None:
            votes = np.stack([columns[name] for name in VOTE_COLUMNS], axis=1)
            columns["caption"] = np.array(captioner.captions(votes), dtype=object)
        writer.write_shard(shard, images, columns)
    comm.barrier()

    def finish() -> str:
        checksum = finalize_store(cfg.out)
        remove_leftovers([cfg.out])  # of a killed earlier run; every rank is done here
        return checksum

    checksum = on_root(comm, finish)
    return SynthSummary(**summary, checksum=checksum, shards_drawn_here=len(mine),
                        seconds=time.perf_counter() - start)
