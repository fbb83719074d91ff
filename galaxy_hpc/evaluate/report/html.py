"""The report page: plain HTML with inline CSS and relative links to the PNGs beside it, so it
opens from the file system (file://) with no server, and the folder can be copied whole."""

from __future__ import annotations

import json
from html import escape
from typing import Any

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-family: monospace; }
.pair { display: flex; gap: 1.5em; flex-wrap: wrap; } .pair figure { margin: 0; }
figcaption { font-size: 0.85em; color: #555; } img { image-rendering: pixelated; }
.plots img { image-rendering: auto; max-width: 100%; } pre { background: #f7f7f7; padding: 0.6em;
overflow-x: auto; font-size: 0.8em; } .note { color: #555; font-size: 0.9em; }
tr.within td { background: #e6f4ea; } tr.off td { background: #fde2e1; }
tr.sparse td, tr.unmeasured td { color: #888; background: #f7f7f7; }
"""


def num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def table(header: list[str], rows: list[list[Any]],
          row_classes: list[str] | None = None) -> str:
    """`row_classes`: a CSS class per row (the fidelity verdicts' colours)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    classes = row_classes or [""] * len(rows)
    body = "".join(
        (f'<tr class="{escape(css)}">' if css else "<tr>")
        + "".join(f'<td class="num">{num(v)}</td>' if isinstance(v, (int, float))
                  or v is None else f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
        for row, css in zip(rows, classes))
    return f"<table><tr>{head}</tr>{body}</table>"


def image(file: str, caption: str, css: str = "") -> str:
    return (f'<figure class="{css}"><img src="{escape(file)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def notes(lines: list[str]) -> str:
    return "".join(f'<p class="note">{escape(line)}</p>' for line in lines)


def provenance(label: str, store: dict[str, Any]) -> str:
    rows = [["path", store["path"]], ["images", store["count"]],
            ["image shape", " x ".join(map(str, store["image_shape"])) + " " + store["image_dtype"]],
            ["checksum", store["checksum"]]]
    attrs = json.dumps(store.get("attrs", {}), indent=1, sort_keys=True, default=str)
    return (f"<h3>{escape(label)}</h3>" + table(["", ""], rows)
            + f"<pre>{escape(attrs)}</pre>")


def page(title: str, sections: list[str], footer: str) -> str:
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1>" + "".join(sections)
            + f'<p class="note">{escape(footer)}</p></body></html>')
