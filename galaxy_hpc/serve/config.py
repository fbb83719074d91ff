"""Config of `galaxy-hpc serve` (`kind: serve`): what it serves and the limits it keeps.
Imports no torch and no web framework: `galaxy-hpc config` checks it on a login node.

Rate limits and the token may also come from the environment (a Slurm script or a
Jupyter launcher sets them without writing a file): GALAXY_HPC_SERVE_TOKEN, and
GALAXY_HPC_SERVE_RATE_<FIELD> for each field of `rate` (e.g.
GALAXY_HPC_SERVE_RATE_PER_CLIENT="120/minute"); the environment wins over the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields

from galaxy_hpc.generate.config import ModelSection, RuntimeSection, SamplerSection

ENV_TOKEN = "GALAXY_HPC_SERVE_TOKEN"
ENV_RATE = "GALAXY_HPC_SERVE_RATE_"
# A store's name is part of URLs: letters, digits, - and _ only (no path in it).
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RATE = re.compile(r"^\s*\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?\s*$")


@dataclass
class RateSection:
    """Rate limits (the `limits` library's strings: "120/minute", "10/second")."""

    per_client: str = "1200/minute"  # every request of one client address
    per_session: str = "600/minute"  # one browser session (its cookie)
    overall: str = "12000/minute"  # all clients together
    infer_per_client: str = "120/minute"  # /infer calls of one client

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not _RATE.match(value):
                raise ValueError(f"rate.{f.name}: {value!r} is not a rate like '120/minute'")


@dataclass
class RequestLimits:
    """What one request may ask for; more answers 4xx with a one-line message."""

    max_n: int = 8  # images per /infer request
    max_steps: int = 100
    max_size: int = 512  # image side, pixels
    max_body_bytes: int = 65536
    max_page_size: int = 200  # thumbnails per catalog page
    max_queue_images: int = 256  # images waiting for the device; more answers 503

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 1:
                raise ValueError(f"limits.{f.name} must be >= 1, got {getattr(self, f.name)}")


@dataclass
class BatchingSection:
    """How /infer requests share the device: up to max_batch images a generator call,
    waiting up to max_wait_ms after the first request for others to join it."""

    max_batch: int = 16
    max_wait_ms: float = 20.0

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0:
            raise ValueError("batching.max_batch must be >= 1 and batching.max_wait_ms >= 0")


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"  # 0.0.0.0 opens it to the network (give a token then)
    port: int = 8000  # the ssh tunnel forwards this port
    # A bearer token every API and page request must carry (header `Authorization:
    # Bearer T`, or `?token=T` once, which sets a cookie); null: none (or the environment's
    # GALAXY_HPC_SERVE_TOKEN).
    token: str | None = None
    # Stores to browse, by the name URLs use: {real: /scratch/sdss.zarr, gen: catalog.h5}.
    stores: dict[str, str] = field(default_factory=dict)
    # An evaluation report (HTML) to link from a store's page, by store name.
    reports: dict[str, str] = field(default_factory=dict)
    # The model /infer draws from; null: browse only.
    model: ModelSection | None = None
    # A second model to draw beside it with the same seeds (base vs fine-tuned).
    base_model: ModelSection | None = None
    sampler: SamplerSection = field(default_factory=SamplerSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)
    thumbnail_px: int = 96  # thumbnail side, pixels
    thumbnail_cache: int = 4096  # thumbnails kept in memory (PNG bytes, LRU)
    rate: RateSection = field(default_factory=RateSection)
    limits: RequestLimits = field(default_factory=RequestLimits)
    batching: BatchingSection = field(default_factory=BatchingSection)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        bad = [n for n in [*self.stores, *self.reports] if not NAME.match(n)]
        if bad:
            raise ValueError(f"stores: name {bad[0]!r} may hold only letters, digits, - and _")
        unknown = [n for n in self.reports if n not in self.stores]
        if unknown:
            raise ValueError(f"reports.{unknown[0]}: no store of that name in stores")
        if self.thumbnail_px < 16 or self.thumbnail_cache < 0:
            raise ValueError("thumbnail_px must be >= 16 and thumbnail_cache >= 0")

    def with_environment(self, environ: dict[str, str] | None = None) -> "ServeConfig":
        """The token and rate limits the environment sets, over the file's."""
        env = os.environ if environ is None else environ
        if env.get(ENV_TOKEN):
            self.token = env[ENV_TOKEN]
        values = {f.name: env.get(ENV_RATE + f.name.upper(), getattr(self.rate, f.name))
                  for f in fields(self.rate)}
        self.rate = RateSection(**values)
        return self
