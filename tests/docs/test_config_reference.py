"""The configuration reference (docs/reference/config/) is what tools/config_reference.py
writes from the config dataclasses today: a field added, renamed or re-commented without
regenerating it fails here."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys

from doc_blocks import ROOT

spec = importlib.util.spec_from_file_location("config_reference", ROOT / "tools" / "config_reference.py")
config_reference = importlib.util.module_from_spec(spec)
sys.modules["config_reference"] = config_reference
spec.loader.exec_module(config_reference)


def test_committed_reference_is_what_the_dataclasses_give() -> None:
    stale = config_reference.stale_pages()
    assert not stale, (f"docs/reference/config is stale ({', '.join(stale)}): "
                       "run python tools/config_reference.py and commit the pages")
    assert not config_reference.missing_from_nav(sorted(config_reference.pages()))


def test_every_registered_kind_has_a_page_with_every_key() -> None:
    from hpc.config import kind_class, registered_kinds

    pages = config_reference.pages()
    shipped = {kind for kind in registered_kinds()
               if kind_class(kind).__module__.split(".")[0] in ("galaxy_hpc", "hpc")}
    assert {"train_sd", "generate", "cluster", "fid", "encode"} <= shipped
    assert shipped <= {name[:-3] for name in pages}
    sd = pages["train_sd.md"]
    cls = config_reference.registered_kinds()["train_sd"]
    for section in ("run", "data", "optim", "zero", "ema", "model"):
        for field in dataclasses.fields(type(getattr(cls(), section))):
            assert f"| `{section}.{field.name}` |" in sd
    # A family's own default (SD's data section captions), not the shared class's.
    assert '| `data.caption_column` | `str \\| null` | `"caption"` |' in sd


@dataclasses.dataclass
class Inner:
    # Spread over
    # two lines.
    depth: int = 3
    width: list[int] = dataclasses.field(default_factory=lambda: [1, 2])  # trailing words


@dataclasses.dataclass
class Outer:
    name: str  # required, no default
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_descriptions_come_from_the_field_comments() -> None:
    assert config_reference.field_comments(Inner) == {
        "depth": "Spread over two lines.", "width": "trailing words"}
    text = "\n".join(config_reference.section_tables(Outer, None))
    assert "| `name` | `str` | required | required, no default |" in text
    assert "| `inner.depth` | `int` | `3` | Spread over two lines. |" in text
    assert "| `inner.width` | `list[int]` | `[1, 2]` | trailing words |" in text
