"""Every file a docstring or comment points a reader to exists in the repository.

A pointer to a file that was renamed or never existed (`train/families.py`, notes that
live outside the repository) sends a newcomer looking for nothing. Checked: paths from
the repository root (`galaxy_hpc/...`, `hpc/...`, `tests/...`, `configs/...`,
`slurm/...`, `benchmarks/...`, `tools/...`), which must exist there; other paths and bare
`*.py` / `*.md` names, which must exist beside the file or in a folder above it
(`see damage.py`, `README.md`). Names of what the code writes (`*.json`, `*.txt`, or a
name the file's own code spells in a string: `gpu_check.md`) and placeholders
(`configs/cluster/NAME.yaml`, `CONFIG.yaml`) are not pointers. Dotted names of our own
modules (`galaxy_hpc.data.synth.physics`, `hpc.store.writer.format_shards`) must name a
module, or a name its source defines.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("galaxy_hpc", "hpc", "benchmarks", "tools")
ROOT_FOLDERS = ("galaxy_hpc", "hpc", "tests", "configs", "slurm", "benchmarks", "tools")
MODULE = re.compile(r"(?<![\w./-])((?:galaxy_hpc|hpc)(?:\.\w+)+)")
PATH = re.compile(r"(?<![\w./*<{-])([\w.-]+(?:/[\w.-]+)*\.(?:py|md|ya?ml|sbatch|sh))\b")

# Stale pointers in modules being rewritten by another change (the model-family
# contract moving out of train/, issue 17): (file, path named). Empty it as they go; a
# pair that is no longer stale fails below so that it does not linger here.
KNOWN_STALE_IN_TRAIN_AND_MODELS: set[tuple[str, str]] = set()


@dataclass
class Scanned:
    """What a module says to readers, and the strings its code uses."""

    prose: list[tuple[int, str]]  # (line, text) of every comment and docstring
    code_strings: str  # the other string constants, joined: names the code reads or writes


def scan(source: str) -> Scanned:
    prose = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    docstrings, strings = set(), []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                prose.append((node.body[0].lineno, doc))
                docstrings.add(id(node.body[0].value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.append(node)
    code = "\n".join(node.value for node in strings if id(node) not in docstrings)
    return Scanned(sorted(prose), code)


def is_placeholder(name: str) -> bool:
    """`NAME.yaml`, `configs/cluster/NAME.yaml`: a name to fill in, not a file. Notes in
    capitals (`README.md`) are files."""
    if name.endswith(".md"):
        return False
    return any(part.split(".")[0].isupper() for part in name.split("/"))


def missing_paths(file: Path, scanned: Scanned, repo: Path = REPO) -> list[tuple[int, str]]:
    """(line, path) of each pointer in `file`'s comments and docstrings that names nothing."""
    folders = [parent for parent in file.parents if parent == repo or repo in parent.parents]
    missing = []
    for line, text in scanned.prose:
        for name in PATH.findall(text):
            if is_placeholder(name) or name in scanned.code_strings:
                continue
            first, _, rest = name.partition("/")
            if rest and first in ROOT_FOLDERS:
                exists = (repo / name).exists()
            elif "/" in name or name.endswith((".py", ".md")):
                exists = any((folder / name).exists() for folder in folders)
            else:
                continue  # a bare config or script name: an example more often than a file
            if not exists:
                missing.append((line, name))
    return missing


@lru_cache(maxsize=None)
def resolves(dotted: str, repo: Path = REPO) -> bool:
    """A module or package (train/ has no __init__.py), or a module and a name in it."""
    parts = dotted.split(".")
    for count in range(len(parts), 0, -1):
        base = repo.joinpath(*parts[:count])
        module = base.with_suffix(".py")
        source = module if module.is_file() else base / "__init__.py"
        if source.is_file():
            if count == len(parts):
                return True
            return re.search(rf"\b{parts[count]}\b", source.read_text()) is not None
        if base.is_dir():
            return count == len(parts)
    return False


def missing_modules(scanned: Scanned, repo: Path = REPO) -> list[tuple[int, str]]:
    """(line, dotted name) of each of our modules named in comments and docstrings that
    does not exist."""
    return [
        (line, name)
        for line, text in scanned.prose
        for name in (match.rstrip(".") for match in MODULE.findall(text))
        if not resolves(name, repo)
    ]


def stale_pointers() -> set[tuple[str, str]]:
    found = set()
    for top in SCANNED:
        for file in sorted((REPO / top).rglob("*.py")):
            scanned = scan(file.read_text())
            for _, name in missing_paths(file, scanned) + missing_modules(scanned):
                found.add((file.relative_to(REPO).as_posix(), name))
    return found


def test_docstrings_and_comments_name_files_that_exist():
    stale = stale_pointers()
    unexpected = sorted(stale - KNOWN_STALE_IN_TRAIN_AND_MODELS)
    assert not unexpected, "comments or docstrings name files that do not exist: " + "; ".join(
        f"{file}: {name}" for file, name in unexpected
    )
    fixed = sorted(KNOWN_STALE_IN_TRAIN_AND_MODELS - stale)
    assert not fixed, (
        "no longer stale, remove from KNOWN_STALE_IN_TRAIN_AND_MODELS: "
        + "; ".join(f"{file}: {name}" for file, name in fixed)
    )


def test_the_check_finds_a_renamed_module_and_accepts_real_ones(tmp_path):
    package = tmp_path / "galaxy_hpc" / "data"
    package.mkdir(parents=True)
    (package / "gz2.py").write_text("")
    (tmp_path / "README.md").write_text("")
    module = package / "columns.py"
    source = (
        '"""Units of galaxy_hpc/data/gz2.py; see README.md and gz2.py."""\n'
        "# moved: galaxy_hpc/data/synth_physics.py, and the notes in DESIGN.md\n"
        "# writes predictor.json and report.md; configs/cluster/NAME.yaml is a placeholder\n"
        'OUT = "report.md"\n'
    )
    assert missing_paths(module, scan(source), repo=tmp_path) == [
        (2, "galaxy_hpc/data/synth_physics.py"),
        (2, "DESIGN.md"),
    ]


def test_the_check_finds_a_moved_module_by_its_dotted_name(tmp_path):
    package = tmp_path / "galaxy_hpc" / "data" / "synth"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "physics.py").write_text("def draw_params():\n    pass\n")
    (tmp_path / "galaxy_hpc" / "train").mkdir()  # a namespace package
    source = (
        "# truth: galaxy_hpc.data.synth.physics.draw_params, galaxy_hpc.train.\n"
        "# gone: galaxy_hpc.data.synth_physics, galaxy_hpc.data.synth.physics.draw_truth,\n"
        "# galaxy_hpc.train.families\n"
    )
    assert missing_modules(scan(source), repo=tmp_path) == [
        (2, "galaxy_hpc.data.synth_physics"),
        (2, "galaxy_hpc.data.synth.physics.draw_truth"),
        (3, "galaxy_hpc.train.families"),
    ]
