"""`galaxy-hpc report RUN_DIR`: one HTML page from the evaluation results in a run folder.

Reads RUN_DIR/{fid,physics,morphology,morphology_fidelity,conditioning,augmentation}.json
(whichever exist; `evaluate ... --out RUN_DIR` writes them) of one generated store
(selection.py: a folder mixing catalogs gets a warning and a page per catalog with
`--generated`), and writes RUN_DIR/report/index.html with its PNGs beside it: real vs
generated image grids per class, the metric table with the extractor and image counts,
histograms of the physical parameters, per-question morphology scores, morphology
fidelity against the predictor's floor (morphology_fidelity.py), the conditioning
correlations with their intervals and the conditional-fidelity verdicts per cell
(conditioning.py), and the provenance of both stores (their attributes, counts,
checksums). Nothing is fetched from a network; the page opens from the file system.
"""

from galaxy_hpc.evaluate.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
