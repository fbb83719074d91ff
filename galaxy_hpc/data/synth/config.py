"""Configuration of the synthetic galaxies: one typed, validated dataclass.

Every user mistake is a ValueError that names the field and says what it
should be, so a YAML typo fails at load time rather than deep inside GalSim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from galaxy_hpc.data.synth.physics import BANDS_KNOWN
from galaxy_hpc.data.synth.render import RGB_Q, RGB_STRETCH


@dataclass(frozen=True)
class SynthConfig:
    """How to draw synthetic galaxies. Lists are accepted (YAML) and stored as tuples.

    Defaults are SDSS imaging: 0.396"/pixel, 1.4" seeing (the survey's median
    in r), sky noise from the survey's typical sky brightness, the main
    spectroscopic sample's flux limit r < 17.77 and redshift range.
    """

    size: int = 64
    pixel_scale_arcsec: float = 0.396
    bands: tuple[str, ...] = ("g", "r", "i")
    psf_fwhm_arcsec: float = 1.4
    psf_beta: float = 3.5  # Moffat wing index; SDSS PSFs are fit by beta ~ 3-5
    # nmgy per pixel, one per band; None: SDSS typical, scaled to the pixel size
    sky_noise: tuple[float, ...] | None = None
    electrons_per_nanomaggy: tuple[float, ...] | None = None  # per band; None: SDSS typical
    add_noise: bool = True
    output: str = "float32"  # "float32": linear nmgy/pixel; "uint8": RGB asinh composite
    redshift_range: tuple[float, float] = (0.02, 0.25)
    log_stellar_mass_range: tuple[float, float] = (9.0, 11.5)
    # "schechter": mass function x V_max, an SDSS-like sample; "flat": even in log M*
    mass_prior: str = "schechter"
    r_mag_limit: float | None = 17.77  # None: no flux limit (redshift uniform in volume)
    sersic_indices: tuple[float, ...] = (1.5, 2.5, 4.0)  # each new n costs ~30 ms of tables once
    num_volunteers: int = 44  # the median number of GZ2 classifications per galaxy
    rgb_q: float = RGB_Q  # Lupton et al. 2004 asinh stretch: F(I) = asinh(Q I / stretch) / Q
    rgb_stretch: float = RGB_STRETCH  # nmgy; F is linear below ~stretch / Q

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self._validate()

    def _validate(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"SynthConfig.{name}: {why} (got {getattr(self, name)!r})")

        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not 16 <= self.size <= 1024
        ):
            raise bad("size", "must be an integer number of pixels between 16 and 1024")
        for name in ("pixel_scale_arcsec", "psf_fwhm_arcsec", "rgb_q", "rgb_stretch"):
            value = getattr(self, name)
            if not _is_real(value) or not value > 0:
                raise bad(name, "must be a positive number")
        if not _is_real(self.psf_beta) or not 1.1 < self.psf_beta <= 20:
            raise bad(
                "psf_beta",
                "must be a number in (1.1, 20] (a Moffat with beta <= 1.1 has infinite flux)",
            )
        if not isinstance(self.bands, tuple) or not self.bands:
            raise bad("bands", "must be a non-empty list of band names")
        if any(b not in BANDS_KNOWN for b in self.bands) or len(set(self.bands)) != len(self.bands):
            raise bad("bands", f"must be distinct names from {BANDS_KNOWN}")
        for name in ("sky_noise", "electrons_per_nanomaggy"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, tuple) or len(value) != len(self.bands):
                raise bad(
                    name,
                    f"must give one number per band ({len(self.bands)}), or be null for SDSS",
                )
            if not all(_is_real(v) and v >= 0 for v in value) or (
                name != "sky_noise" and min(value) <= 0
            ):
                raise bad(name, "must be non-negative numbers (electrons_per_nanomaggy positive)")
        if not isinstance(self.add_noise, bool):
            raise bad("add_noise", "must be true or false")
        if self.output not in ("float32", "uint8"):
            raise bad("output", "must be 'float32' (linear flux) or 'uint8' (RGB composite)")
        if self.output == "uint8" and len(self.bands) != 3:
            raise bad(
                "output",
                f"'uint8' makes an RGB composite and needs exactly 3 bands, bands={self.bands}",
            )
        _check_range(self, "redshift_range", 1e-3, 1.0)
        _check_range(self, "log_stellar_mass_range", 7.0, 12.5)
        if self.mass_prior not in ("schechter", "flat"):
            raise bad(
                "mass_prior", "must be 'schechter' (SDSS-like sample) or 'flat' (uniform in log M*)"
            )
        if self.r_mag_limit is not None and (
            not _is_real(self.r_mag_limit) or not 10 <= self.r_mag_limit <= 30
        ):
            raise bad(
                "r_mag_limit", "must be an r magnitude between 10 and 30, or null for no flux limit"
            )
        if not isinstance(self.sersic_indices, tuple) or not self.sersic_indices:
            raise bad("sersic_indices", "must be a non-empty list of Sersic indices")
        if not all(_is_real(n) and 0.3 <= n <= 6.2 for n in self.sersic_indices):
            raise bad(
                "sersic_indices", "each index must lie in [0.3, 6.2], the range GalSim supports"
            )
        if isinstance(self.num_volunteers, bool) or not isinstance(self.num_volunteers, int):
            raise bad("num_volunteers", "must be a positive integer")
        if self.num_volunteers < 1:
            raise bad("num_volunteers", "must be a positive integer")


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_range(cfg: SynthConfig, name: str, lowest: float, highest: float) -> None:
    value = getattr(cfg, name)
    ok = isinstance(value, tuple) and len(value) == 2 and all(_is_real(v) for v in value)
    if not ok or not lowest <= value[0] < value[1] <= highest:
        raise ValueError(
            f"SynthConfig.{name}: must be [low, high] with {lowest} <= low < high <= {highest}"
            f" (got {value!r})"
        )
