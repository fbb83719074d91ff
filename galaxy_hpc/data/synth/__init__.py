"""Synthetic SDSS-like galaxies with known truth: the toolkit's embedded default data.

``draw_galaxies(cfg, seed, start, count)`` (galaxies.py) returns images and a truth
table; ``run_synth`` (job.py, the `synth` command) writes a catalog of them into a
store on any number of ranks.

Each galaxy is a GalSim bulge (Sersic, n from a small grid) plus exponential
disk, convolved with a Moffat PSF, with sky and source noise, in g, r, i by
default. Its redshift, stellar mass, flux, size, bulge fraction, shape and
colours follow published scaling relations (``population`` and
``physics`` give them with their sources), so a model conditioned on
(z, log M*) has something real to learn: more massive is brighter, larger,
redder and more bulge-dominated; farther is fainter, smaller and (through the
K-correction) redder. By default the sample is flux limited like the SDSS main
galaxy sample (r < 17.77, median z ~ 0.09), so z and M* are correlated as in
real catalogs. GZ2-style vote fractions come from simulated volunteers looking
at the true shape (``votes``), so captions exist. Pixels, noise and the
SDSS-like colour composite are in ``render``.

What these galaxies do NOT have: spiral arms, bars, rings, dust lanes, star
forming knots, colour gradients within a component, mergers, neighbours or
foreground stars, evolution with redshift, K-corrections better than a linear
approximation, band-dependent seeing, sky-subtraction errors, cosmic rays or
saturation, and no AGN or quenched disks as separate populations. Centres are
exactly at the stamp centre; the pixel scale is fixed, so nearby giants can
overfill the stamp (GZ2 cutouts were instead scaled to each galaxy's size).
A model that learns "spiral" or "bar" from them learns the labelling rule,
not the feature.
"""

from galaxy_hpc.data.synth.config import SynthConfig
from galaxy_hpc.data.synth.galaxies import TRUTH_COLUMNS, draw_galaxies
from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth
from galaxy_hpc.data.synth.render import lupton_rgb, render_preview
from galaxy_hpc.data.synth.votes import QUESTION_COLUMNS, VOTE_COLUMNS

__all__ = [
    "QUESTION_COLUMNS",
    "TRUTH_COLUMNS",
    "VOTE_COLUMNS",
    "SynthConfig",
    "SynthJobConfig",
    "draw_galaxies",
    "lupton_rgb",
    "render_preview",
    "run_synth",
]
