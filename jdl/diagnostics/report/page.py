"""The report itself: sections of text, tables and figures rendered to one self-contained HTML page and a JSON file."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import os
from pathlib import Path
from typing import Any


from jdl import _io



@dataclasses.dataclass
class Section:
    """A titled part of a report: paragraphs, a table (header, rows) and figures (PNG bytes, caption)."""

    title: str
    paragraphs: list[str] = dataclasses.field(default_factory=list)
    table: tuple[list[str], list[list[Any]]] | None = None
    figures: list[tuple[bytes, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Report:
    """A report: title, sections, plain-language findings, and `data` (every number, for report.json)."""

    title: str
    sections: list[Section] = dataclasses.field(default_factory=list)
    findings: list[str] = dataclasses.field(default_factory=list)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def html(self) -> str:
        """The whole report as one HTML document (no external resources)."""
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
                 f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"]
        if self.findings:
            parts.append("<section id='findings'><h2>Findings</h2><ul>")
            parts += [f"<li>{html.escape(f)}</li>" for f in self.findings]
            parts.append("</ul></section>")
        for section in self.sections:
            parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
            parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
            if section.table is not None:
                header, rows = section.table
                parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
                for row in rows:
                    parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>")
                parts.append("</table>")
            for png, caption in section.figures:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def save(self, directory: str | os.PathLike, name: str = "report") -> tuple[Path, Path]:
        """Write DIRECTORY/NAME.html and DIRECTORY/NAME.json atomically; returns both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        page, numbers = directory / f"{name}.html", directory / f"{name}.json"
        body = {"title": self.title, "findings": self.findings, **self.data}
        _io.write_json(numbers, body)
        _io.atomic_write_text(page, self.html())
        return page, numbers


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "h1{border-bottom:2px solid #444}h2{margin-top:1.6em;border-bottom:1px solid #ccc}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
        "th{background:#eee}figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}"
        "#findings{background:#fff8e1;padding:.2em 1em;border-left:4px solid #f0a500}")


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
