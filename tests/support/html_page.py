"""A report page read with the standard library's HTML parser (not with the code that
wrote it): its tables by the h2 heading above them, its image sources and captions."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class Page(HTMLParser):
    """Tables (rows of cell texts, by the h2 above them), image sources and captions."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.captions: list[str] = []
        self.heading, self._text, self._in = "", [], None

    def handle_starttag(self, tag, attrs):
        if tag in ("h2", "td", "th", "figcaption"):
            self._in, self._text = tag, []
        elif tag == "tr":
            self.tables.setdefault(self.heading, []).append([])
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        if self._in:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag != self._in:
            return
        text, self._in = "".join(self._text).strip(), None
        if tag == "h2":
            self.heading = text
        elif tag == "figcaption":
            self.captions.append(text)
        else:
            self.tables[self.heading][-1].append(text)


def parse(page: Path) -> Page:
    parser = Page()
    parser.feed(page.read_text())
    return parser
