"""A Hugging Face hub cache laid out as `huggingface-cli download` leaves it, for tests
of models named by their Hub id (hpc.hub) without any network."""

from __future__ import annotations

import hashlib
from pathlib import Path


def cached_repo(cache: Path, repo: str, *, ref: str = "main") -> Path:
    """The (new, empty) snapshot folder of `repo` in `cache`: models--ORG--NAME/
    snapshots/<commit>/, with refs/<ref> naming the commit. Write the repo's files there."""
    commit = hashlib.sha1(f"{repo}@{ref}".encode()).hexdigest()
    root = Path(cache) / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    return snapshot
