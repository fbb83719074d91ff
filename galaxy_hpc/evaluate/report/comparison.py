"""The report's comparison with a baseline run: one model's figures beside another's.

`galaxy-hpc report RUN_DIR --baseline BASE_DIR` puts the FID, KID, Spearman trends and
conditional-fidelity verdicts of RUN_DIR's catalog beside those of BASE_DIR's (say the
same model untrained, exported the same way), so the page shows what training bought.
The two are comparable only when they were measured alike (the same real store, the
same feature extractor, the same cells); where they were not, the section says so
rather than hiding it.
"""

from __future__ import annotations

from typing import Any

from galaxy_hpc.evaluate.report import html


def _metric(results: dict[str, Any], key: str) -> float | None:
    metrics = results.get("fid", {}).get("metrics", {})
    return metrics.get(key)


def _identity(result: dict[str, Any] | None, side: str) -> str | None:
    store = (result or {}).get(side)
    return (store.get("checksum") or store.get("path")) if isinstance(store, dict) else None


def _mismatches(results: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    notes = []
    for name in sorted(set(results) & set(baseline)):
        if _identity(results[name], "real") != _identity(baseline[name], "real"):
            notes.append(f"warning: the {name} results compare against different real stores")
    fid, base_fid = results.get("fid"), baseline.get("fid")
    if fid and base_fid and fid.get("extractor") != base_fid.get("extractor"):
        notes.append("warning: the FIDs come from different feature extractors: not comparable")
    return notes


def _trend_rows(cond: dict[str, Any], base: dict[str, Any] | None) -> list[list[Any]]:
    """rho per pair, overall and per bin: baseline, this run, real."""
    def by_pair(found: dict[str, Any] | None, key: str) -> dict[tuple[str, str], Any]:
        return {(c["requested"], c["measured"]): c for c in (found or {}).get(key, [])}

    base_pairs, real_pairs = by_pair(base, "correlations"), by_pair(cond, "real_correlations")
    rows = []
    for c in cond["correlations"]:
        pair = (c["requested"], c["measured"])
        other, real = base_pairs.get(pair), real_pairs.get(pair)
        rows.append([f"rho {c['requested']} vs {c['measured']}", other and other["rho"],
                     c["rho"], real and real["rho"]])
        for b in range(len(c["bin_rho"]) if c.get("by") else 0):
            lo, hi = c["bin_edges"][b], c["bin_edges"][b + 1]
            rows.append([f"  {c['by']} {lo:.3g}-{hi:.3g}", _at(other, b), c["bin_rho"][b],
                         _at(real, b)])
    return rows


def _at(correlation: dict[str, Any] | None, b: int) -> float | None:
    if not correlation or not correlation.get("by") or b >= len(correlation["bin_rho"]):
        return None
    return correlation["bin_rho"][b]


def _verdicts(cond: dict[str, Any] | None, name: str) -> str:
    """'k of n cells within noise' for one quantity ('-' without fidelity cells)."""
    fidelity = (cond or {}).get("fidelity")
    if not fidelity or name not in fidelity["quantities"]:
        return "-"
    statuses = [cell["quantities"][name]["status"] for cell in fidelity["cells"]]
    judged = [s for s in statuses if s in ("within", "off")]
    return f"{judged.count('within')} of {len(judged)} cells within noise"


def comparison_section(results: dict[str, Any], baseline: dict[str, Any], *,
                       label: str, baseline_label: str) -> str:
    """The section's HTML: a table with a column for the baseline, this run and real data."""
    header = ["figure", baseline_label, label, "real data"]
    rows: list[list[Any]] = []
    for key, name in (("fid", "FID (lower is better)"), ("kid_mean", "KID")):
        if _metric(results, key) is not None or _metric(baseline, key) is not None:
            rows.append([name, _metric(baseline, key), _metric(results, key), "-"])
    cond, base_cond = results.get("conditioning"), baseline.get("conditioning")
    if cond:
        rows += _trend_rows(cond, base_cond)
        for name in (cond.get("fidelity") or {}).get("quantities", []):
            rows.append([f"fidelity of {name}", _verdicts(base_cond, name),
                         _verdicts(cond, name), "-"])
    missing = sorted(set(results) - set(baseline) - {"augmentation"})
    notes = [f"{baseline_label}: no {', '.join(missing)} result to compare"] if missing else []
    return (f"<h2>What training bought: {html.num(label)} against {html.num(baseline_label)}"
            "</h2>" + html.notes(["The same evaluations of two catalogs against the same real "
                                  "galaxies; rho is Spearman's, per bin of the conditioning "
                                  "table below; fidelity verdicts as in the per-cell tables."]
                                 + notes + _mismatches(results, baseline))
            + html.table(header, rows))
