"""The documentation site builds with mkdocs --strict (a broken link, a page missing from
the nav, a bad anchor fail it) and loads nothing from the network: no script, style
sheet, font or image from an http(s) address, so it reads offline on a cluster."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from doc_blocks import ROOT

REMOTE_ASSET = re.compile(
    r"<(?:script|img|iframe|source)\b[^>]*\bsrc=[\"']?(?:https?:)?//"
    r"|<link\b[^>]*\bhref=[\"']?(?:https?:)?//"
    r"|@import\s+(?:url\()?[\"']?(?:https?:)?//"
    r"|url\(\s*[\"']?(?:https?:)?//", re.IGNORECASE)


def test_docs_build_strictly_and_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    pages = sorted(site.rglob("*.html"))
    names = {p.relative_to(site).as_posix() for p in pages}
    for expected in ("index.html", "train.html", "cluster.html", "adding-a-family.html",
                     "reference/config/train_sd.html"):
        assert expected in names
    remote = [f"{p.relative_to(site)}: {m.group(0)}"
              for p in [*pages, *site.rglob("*.css"), *site.rglob("*.js")]
              for m in REMOTE_ASSET.finditer(p.read_text(errors="replace"))]
    assert not remote, f"pages that load from the network: {remote[:5]}"
