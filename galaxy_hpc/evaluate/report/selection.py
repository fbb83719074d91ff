"""Which results a report covers: those of one generated store.

A run folder collects whatever `evaluate ... --out RUN_DIR` wrote into it, one file per
evaluation, so it can hold results of several catalogs: `evaluate all` on one catalog,
then `evaluate fid` of another into the same folder. A page titled with one catalog
that shows another's FID misleads, so a report covers the results of one generated
store (the same checksum; the path when a store has none) and names what it left out.
By default that is the store of the newest result (what was evaluated last), or the one
`--generated` names by path or checksum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galaxy_hpc.evaluate.results import RESULT_FILES


@dataclass
class Selection:
    results: dict[str, dict[str, Any]]  # the evaluations the report shows
    generated: dict[str, Any] | None  # the store summary they share
    real: dict[str, Any] | None  # the real store of the newest of them, for the grids
    left_out: list[str] = field(default_factory=list)  # "fid (of other.zarr)", ...
    notes: list[str] = field(default_factory=list)


def _identity(store: dict[str, Any]) -> str:
    return store.get("checksum") or str(store.get("path"))


def _name(store: dict[str, Any]) -> str:
    return Path(str(store.get("path"))).name


def _age_order(run_dir: Path, names: list[str]) -> list[str]:
    """Evaluation names, newest result file first."""
    def mtime(name: str) -> float:
        path = run_dir / RESULT_FILES.get(name, f"{name}.json")
        return path.stat().st_mtime if path.is_file() else 0.0
    return sorted(names, key=mtime, reverse=True)


def select(run_dir: Path, results: dict[str, dict[str, Any]],
           generated: str | None = None) -> Selection:
    """Keep the results of one generated store; say which were left out and why."""
    order = _age_order(run_dir, list(results))
    stores = {name: results[name]["generated"] for name in order
              if isinstance(results[name].get("generated"), dict)}
    distinct = {_identity(s): s for s in reversed(list(stores.values()))}  # newest wins
    if generated is not None:
        wanted = [s for s in stores.values() if generated in (s.get("checksum"), s.get("path"))
                  or Path(generated).resolve() == Path(str(s.get("path"))).resolve()]
        if not wanted:
            listed = ", ".join(f"{s.get('path')} ({s.get('checksum')})" for s in distinct.values())
            raise ValueError(f"--generated {generated}: no result in {run_dir} is of that "
                             f"store; its results are of: {listed or 'no generated store'}")
        chosen = wanted[0]
    else:
        chosen = next(iter(stores.values()), None)
    selection = Selection({}, chosen, None)
    for name in order:
        store = stores.get(name)
        if chosen is None or store is None or _identity(store) == _identity(chosen):
            selection.results[name] = results[name]
        else:
            selection.left_out.append(f"{name} (of {store.get('path')})")
    unnamed = [name for name in selection.results if name not in stores]
    if chosen is not None and unnamed:
        selection.notes.append(f"{', '.join(unnamed)} name(s) no generated store: shown, but "
                               "they may describe another catalog")
    if selection.left_out:
        selection.notes.insert(0, (
            f"warning: {run_dir} mixes results of {len(distinct)} generated stores; this "
            f"report covers {chosen.get('path')} and leaves out {'; '.join(selection.left_out)}"
            " (galaxy-hpc report --generated STORE reports on another; evaluate each catalog "
            "into its own folder)"))
    reals = [results[name]["real"] for name in selection.results
             if isinstance(results[name].get("real"), dict)]
    selection.real = reals[0] if reals else None
    if len({_identity(r) for r in reals}) > 1:
        names = sorted({_name(r) for r in reals})
        selection.notes.append(f"warning: these results compare against {len(names)} real "
                               f"stores ({', '.join(names)}); the grids show "
                               f"{_name(selection.real)}")
    return selection
