"""Model weights named by a local path or by a Hugging Face Hub id, read from the cache.

Users of every seed project name models by their Hub id (`runwayml/stable-diffusion-v1-5`,
`facebook/dinov2-base`). Compute nodes usually have no network, so the id is resolved
from the local Hugging Face cache only, never downloaded: on a login node the user runs
`huggingface-cli download ORG/NAME`, which fills the cache (HF_HUB_CACHE, else
$HF_HOME/hub, else ~/.cache/huggingface/hub) as `models--ORG--NAME/snapshots/<commit>/`
with `refs/main` naming the commit, and the job, with the same HF_HOME, finds it there.

`resolve_weights` is called wherever a weights file or folder is read. A value that
exists on disk is a local path and is returned as given; one shaped like a Hub id
(`ORG/NAME`, optionally `ORG/NAME/sub/path` for a file or folder inside the repo and
`@REVISION` for a branch, tag or commit) becomes the cached snapshot's path; anything
else is returned as given for the caller to report as a missing path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


@dataclass(frozen=True)
class HubRef:
    repo: str  # ORG/NAME (or a legacy NAME)
    inside: str  # a path inside the repo; "" for the whole snapshot
    revision: str | None  # branch, tag or commit; None: main

    def download_command(self) -> str:
        revision = f" --revision {self.revision}" if self.revision else ""
        return f"huggingface-cli download {self.repo}{revision}"


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as huggingface_hub finds it, read from the environment
    now (huggingface_hub.constants froze it at import time)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "huggingface" / "hub"


def parse_hub_id(value: str) -> HubRef | None:
    """The Hub reference `value` spells, or None when it cannot be one (absolute or
    ./-relative paths, URLs, characters a repo name never has)."""
    if not value or value.startswith(("/", ".", "~")) or "\\" in value or ":" in value:
        return None
    name, _, revision = value.partition("@")
    parts = name.split("/")
    if not all(_PART.match(p) for p in parts) or any("--" in p or ".." in p for p in parts[:2]):
        return None
    if revision and not re.match(r"^[\w.\-/]+$", revision):
        return None
    return HubRef("/".join(parts[:2]), "/".join(parts[2:]), revision or None)


def resolve_weights(value: str, *, field: str) -> str:
    """`value` as a path to read: itself when it exists (or is empty, or cannot be a Hub
    id), else the file or folder of Hub id `value` in the local cache. A Hub id missing
    from the cache is a FileNotFoundError naming `field`, the cache and the download
    command."""
    if not value or Path(value).expanduser().exists():
        return value
    ref = parse_hub_id(value)
    if ref is None:
        return value
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache = hub_cache_dir()
    try:
        snapshot = Path(snapshot_download(ref.repo, revision=ref.revision, cache_dir=cache,
                                          local_files_only=True))
    except LocalEntryNotFoundError:
        raise FileNotFoundError(
            f"{field}: {value!r} is no local path, and {ref.repo}"
            f"{'@' + ref.revision if ref.revision else ''} is not in the Hugging Face cache "
            f"{cache}; fetch it on a node with network: `{ref.download_command()}` (with the "
            f"same HF_HOME), or give a local folder") from None
    target = snapshot / ref.inside if ref.inside else snapshot
    if not target.exists():
        raise FileNotFoundError(f"{field}: {ref.inside} is not in {ref.repo}'s cached snapshot "
                                f"{snapshot}; `{ref.download_command()}` fetches the whole repo")
    return str(target)
