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
    blocks: list[str] = dataclasses.field(default_factory=list)  # ready HTML (built from escaped parts)


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
            parts += [f"<li>{_finding_html(f)}</li>" for f in self.findings]
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
            parts += section.blocks
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


SEVERITIES = ("critical", "warning", "info")


def _finding_html(text: str) -> str:
    """A finding; a leading "critical:", "warning:" or "info:" is shown as a coloured tag."""
    head, _, rest = text.partition(": ")
    if head.lower() in SEVERITIES and rest:
        return f"<span class='sev-{head.lower()}'>{html.escape(head)}</span>: {html.escape(rest)}"
    return html.escape(text)


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a data: URI (for <img src>)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# 10 Tableau colours x 3 line styles: 30 distinguishable series (colour cycles first, then the dash pattern).
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_DASHES = ("-", "--", ":")


def series_style(i: int) -> dict[str, Any]:
    """Line colour and style of series i (distinct for i < 30): colour i mod 10, dash pattern i // 10."""
    return {"color": _COLOURS[i % len(_COLOURS)], "linestyle": _DASHES[(i // len(_COLOURS)) % len(_DASHES)]}


def legend_outside(ax: Any, **options: Any) -> None:
    """The axis' legend to the right of the plot, never over the data (columns of at most 15 entries)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7,
                  ncol=max(1, (len(labels) + 14) // 15), frameon=False, **options)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "h1{border-bottom:2px solid #444}h2{margin-top:1.6em;border-bottom:1px solid #ccc}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
        "th{background:#eee}figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}"
        "#findings{background:#fff8e1;padding:.2em 1em;border-left:4px solid #f0a500}"
        ".gallery{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ccc;padding:4px;font-size:.8em;text-align:center;"
        "background:#fafafa}.card img{image-rendering:pixelated;width:96px;height:96px;margin:2px}.card.wrong{border-color:#c62828;"
        "background:#ffebee}.tokens span{padding:1px 2px;margin:1px;border-radius:2px;display:inline-block}"
        ".sev-critical{color:#b71c1c;font-weight:bold}.sev-warning{color:#e65100;font-weight:bold}.sev-info{color:#555}"
        "img.tile{image-rendering:pixelated;width:96px;height:96px}table.explain td{text-align:center}"
        ".cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1em}")


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
