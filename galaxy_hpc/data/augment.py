"""Galaxy-appropriate augmentation: rotations by any angle and flips, never crops.

A galaxy on the sky has no preferred orientation and no handedness that a survey
cutout could know of, so rotating it by any angle and mirroring it give equally likely
galaxies. Crops and zooms do not: they cut off the outskirts, or change the apparent
size, which carries physics (size-mass, size-redshift) that conditional models must learn.

Empty corners. Rotating a square cutout by a non-right angle exposes its corners
(~21% of the width beyond the old edge at 45 degrees): their pixels would come from
outside the cutout, where there is no data. Filling them with zeros puts black
triangles, a feature no real cutout has, into every training image, and a generative
model learns to draw them. Mirroring the cutout at its edges (reflect padding) fills
them with sky, but with the sky of the wrong place: a corner pixel 22 px from the
centre of a 32 px cutout gets the light of a pixel 11-16 px from it, so a galaxy that
reaches its cutout's edges gets brighter corners, and photometry that takes the sky
from the cutout's border (ours, and most survey pipelines') subtracts too much: on the
synthetic flux set at 32 px the low-redshift third measured 0.2-0.3 px smaller and
0.01-0.03 dex fainter after rotating, and a generator that learned such images
perfectly missed three of eight size cells of the GAN's fidelity target
(benchmarks/gan_fidelity_null.py --augment any). So a pixel whose rotated source lies
beyond the cutout's edge keeps the (flipped) input's own pixel at its place instead:
the same distance from the centre, so the light at each radius, and with it the sky
level, the curve of growth and every size measured from it, is that of the unrotated
cutout; only its direction is the old one, which for sky is no loss. (That oracle
then reads as an unaugmented one.) Inside, the rotation is a rotation.

Interpolation is bilinear (grid_sample), about the geometric centre of the image
((W - 1) / 2, (H - 1) / 2), so a centred galaxy stays centred and total flux is kept
to within interpolation error. Bilinear interpolation also averages neighbouring noise
pixels, lowering the pixel noise by up to ~2x at half-pixel offsets; `rotation=
"right_angles"` (multiples of 90 degrees, exact) avoids that, with flips giving the
8 symmetries of the square. Flips are exact.

Direction: angles are counter-clockwise for images in the FITS convention
(`image[c, y, x]`, y upward), the convention of galaxy_hpc.data.synth.

Everything is deterministic given a numpy Generator, runs on CPU tensors (in the
DataLoader workers), and is simply not applied for evaluation (`augment=None`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

ROTATIONS = ("any", "right_angles", "none")
NUM_DRAWS = 3  # uniforms per image: rotation, left-right flip, up-down flip
_COMPLEX = {torch.float32: np.complex64, torch.float64: np.complex128}


@dataclass(frozen=True)
class AugmentParams:
    """What to do to one image: flips first, then rotation counter-clockwise."""

    angle_deg: float = 0.0
    hflip: bool = False  # mirror left-right (x -> -x)
    vflip: bool = False  # mirror up-down (y -> -y)


@dataclass(frozen=True)
class GalaxyAugment:
    """Random rotation and flips of galaxy cutouts (see the module docstring)."""

    rotation: str = "any"
    hflip: bool = True
    vflip: bool = True

    @property
    def exact(self) -> bool:
        """Whether every draw is a permutation of the pixel grid (no resampling): such
        augmentation keeps an integer image's dtype and values."""
        return self.rotation != "any"

    def __post_init__(self) -> None:
        if self.rotation not in ROTATIONS:
            raise ValueError(f"augment rotation must be one of {', '.join(ROTATIONS)}, "
                             f"got {self.rotation!r}")

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        """Draw one image's parameters. Always consumes exactly three uniforms, so that
        draws made after it from the same generator do not depend on these settings."""
        return self.params(rng.random((1, NUM_DRAWS)))[0]

    def params(self, uniforms: np.ndarray) -> list[AugmentParams]:
        """The parameters of N images from (N, 3) uniforms in [0, 1), one row per image
        (rotation, left-right flip, up-down flip): what `sample` does with its three
        draws, for draws made elsewhere (StoreDataset's per-item counter-based draws)."""
        u = np.asarray(uniforms, dtype=np.float64)
        if u.ndim != 2 or u.shape[1] != NUM_DRAWS:
            raise ValueError(f"need uniforms of shape (N, {NUM_DRAWS}), got {u.shape}")
        if self.rotation == "any":
            angles = 360.0 * u[:, 0]
        elif self.rotation == "right_angles":
            angles = 90.0 * np.floor(4.0 * u[:, 0])
        else:
            angles = np.zeros(len(u))
        hflips = (u[:, 1] < 0.5) & self.hflip
        vflips = (u[:, 2] < 0.5) & self.vflip
        return [AugmentParams(a, h, v) for a, h, v in
                zip(angles.tolist(), hflips.tolist(), vflips.tolist())]

    def apply(self, images: torch.Tensor, params: Sequence[AugmentParams]) -> torch.Tensor:
        """Images (N, C, H, W), one AugmentParams each; returns a new tensor, float where
        any image is resampled, else of the input's dtype.

        Images rotated by a free angle are resampled once, their flips folded into the
        sampling grid; the others (flips, right angles) are exact permutations."""
        if images.ndim != 4 or len(params) != images.shape[0]:
            raise ValueError(f"need images (N, C, H, W) and N parameter sets, got shape "
                             f"{tuple(images.shape)} and {len(params)}")
        angles = np.array([p.angle_deg % 360.0 for p in params], dtype=np.float64)
        hflips = np.array([p.hflip for p in params], dtype=bool)
        vflips = np.array([p.vflip for p in params], dtype=bool)
        free = (angles % 90.0) != 0.0
        x = images if images.is_floating_point() or not free.any() else images.float()
        if free.all():  # the usual case with rotation="any": one batched resampling
            return rotate(x, angles, hflips=hflips, vflips=vflips)
        out: list[torch.Tensor] = [x[i] for i in range(len(params))]
        for i in np.flatnonzero(~free).tolist():
            image = out[i]
            if hflips[i]:
                image = image.flip(-1)
            if vflips[i]:
                image = image.flip(-2)
            if angles[i]:
                image = rotate_right_angles(image, int(angles[i] // 90.0))
            out[i] = image
        if free.any():
            chosen = np.flatnonzero(free)
            rotated = rotate(x[torch.from_numpy(chosen)], angles[chosen],
                             hflips=hflips[chosen], vflips=vflips[chosen])
            for k, i in enumerate(chosen.tolist()):
                out[i] = rotated[k]
        return torch.stack(out)

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Augment one image (C, H, W) or a batch (N, C, H, W), drawing from rng in order."""
        batch = images if images.ndim == 4 else images.unsqueeze(0)
        out = self.apply(batch, [self.sample(rng) for _ in range(batch.shape[0])])
        return out if images.ndim == 4 else out[0]


def rotate_right_angles(images: torch.Tensor, quarters: int) -> torch.Tensor:
    """Rotate (N, C, H, W) by quarters x 90 degrees counter-clockwise (exact)."""
    if quarters % 2 and images.shape[-1] != images.shape[-2]:
        raise ValueError("right-angle rotations need square images, got "
                         f"{images.shape[-2]}x{images.shape[-1]}")
    # From x (last dim) towards y: counter-clockwise with y upward.
    return torch.rot90(images, quarters, dims=(-1, -2))


def rotate(images: torch.Tensor, angles_deg: Sequence[float] | np.ndarray, *,
           hflips: Sequence[bool] | np.ndarray | None = None,
           vflips: Sequence[bool] | np.ndarray | None = None) -> torch.Tensor:
    """Rotate each image of (N, C, H, W) about its centre by its angle (degrees,
    counter-clockwise), bilinear; where the rotated source lies beyond the cutout, the
    pixel keeps its own (flipped) value (see the module docstring); optional flips are
    applied first, within the same resampling."""
    if images.ndim != 4:
        raise ValueError(f"need images (N, C, H, W), got shape {tuple(images.shape)}")
    n, _, h, w = images.shape
    theta = np.radians(np.asarray(angles_deg, dtype=np.float64)).reshape(n)
    cos, sin = np.cos(theta), np.sin(theta)
    sx = np.where(np.asarray(hflips, dtype=bool), -1.0, 1.0) if hflips is not None else 1.0
    sy = np.where(np.asarray(vflips, dtype=bool), -1.0, 1.0) if vflips is not None else 1.0
    # Output pixel p samples the flipped input at R(-angle) p, in pixel units (so the
    # rotation stays a rotation for non-square images), expressed in normalised units.
    dtype = images.dtype if images.is_floating_point() else torch.float32

    def coefficient(values: np.ndarray | float) -> torch.Tensor:
        return torch.tensor(np.broadcast_to(values, (n,)), dtype=dtype).reshape(n, 1, 1)

    # Normalised pixel-centre coordinates (align_corners=False): pixel i at (2i + 1)/W - 1.
    xs = ((torch.arange(w, dtype=torch.float64) * 2 + 1) / w - 1).to(dtype).reshape(1, 1, w)
    ys = ((torch.arange(h, dtype=torch.float64) * 2 + 1) / h - 1).to(dtype).reshape(1, h, 1)
    # Each grid component is a term along x (n, 1, w) plus a term along y (n, h, 1).
    x_terms = (coefficient(sx * cos) * xs, coefficient(-sy * sin * (w / h)) * xs)
    y_terms = (coefficient(sx * sin * (h / w)) * ys, coefficient(sy * cos) * ys)
    grid = torch.empty(n, h, w, 2, dtype=dtype)
    if dtype in _COMPLEX:
        # The two components as one complex number: one broadcast add writes the grid
        # contiguously (the same float sums; writing each component into the strided
        # grid[..., k] took twice as long).
        along_x = np.empty((n, 1, w), _COMPLEX[dtype])
        along_y = np.empty((n, h, 1), _COMPLEX[dtype])
        along_x.real, along_x.imag = (t.numpy() for t in x_terms)
        along_y.real, along_y.imag = (t.numpy() for t in y_terms)
        points = grid.numpy().view(_COMPLEX[dtype])[..., 0]
        np.add(along_x, along_y, out=points)
        # Beyond the cutout (|grid| > 1: past its outer pixel edges) there is no data:
        # there the grid points at the pixel's own place in the flipped input instead,
        # at the right distance from the centre (see the module docstring), which
        # bilinear sampling at a pixel centre returns exactly. Within half a pixel of
        # the edge, reflection copies the edge pixel, and stays.
        beyond = (np.abs(points.real) > 1.0) | (np.abs(points.imag) > 1.0)  # (n, h, w)
        if beyond.any():
            along_x.real, along_x.imag = (coefficient(sx) * xs).numpy(), 0.0
            along_y.real, along_y.imag = 0.0, (coefficient(sy) * ys).numpy()
            np.add(along_x, along_y, out=points, where=beyond)
    else:
        grid[..., 0] = x_terms[0] + y_terms[0]
        grid[..., 1] = x_terms[1] + y_terms[1]
        beyond_t = (grid[..., 0].abs() > 1.0) | (grid[..., 1].abs() > 1.0)
        if bool(beyond_t.any()):
            grid[..., 0] = torch.where(beyond_t, coefficient(sx) * xs, grid[..., 0])
            grid[..., 1] = torch.where(beyond_t, coefficient(sy) * ys, grid[..., 1])
    return F.grid_sample(images.to(dtype), grid.to(images.device), mode="bilinear",
                         padding_mode="reflection", align_corners=False)
