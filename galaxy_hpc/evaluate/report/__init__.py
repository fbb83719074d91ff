"""`galaxy-hpc report RUN_DIR`: one HTML page from the evaluation results in a run folder.

Reads RUN_DIR/{fid,physics,morphology,conditioning}.json (whichever exist; `evaluate ...
--out RUN_DIR` writes them), and writes RUN_DIR/report/index.html with its PNGs beside it:
real vs generated image grids per class, the metric table with the extractor and image
counts, histograms of the physical parameters, per-question morphology scores, the
conditioning correlations, and the provenance of both stores (their attributes, counts,
checksums). Nothing is fetched from a network; the page opens from the file system.
"""

from galaxy_hpc.evaluate.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
