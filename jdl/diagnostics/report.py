"""Reports a person reads: one self-contained HTML file (plots inline as PNG) plus a JSON file with every number."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


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
        _atomic_write(numbers, json.dumps(_json_safe(body), indent=2) + "\n")
        _atomic_write(page, self.html())
        return page, numbers


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_safe(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- the studies ----------------------------------------------------------------------------------


def depth_report(result: dict[str, Any]) -> Report:
    """Report of `studies.depth_study`: per-layer gradient norms by configuration, and the first/last ratios."""
    plt = _pyplot()
    records = result["records"]
    report = Report("Vanishing and exploding gradients through depth", data=result)
    groups: dict[tuple[bool, bool], list[dict]] = {}
    for r in records:
        groups.setdefault((r["batch_norm"], r["residual"]), []).append(r)
    for (bn, res), group in groups.items():
        depths = sorted({r["depth"] for r in group})
        deepest = [r for r in group if r["depth"] == depths[-1]]
        fig, ax = plt.subplots(figsize=(9, 5))
        for r in deepest:
            ax.semilogy(range(len(r["init_norms"])), r["init_norms"], marker=".", label=f"{r['activation']} + {r['init']}")
        ax.set_xlabel("layer (0 = input layer, last = output head)")
        ax.set_ylabel("‖∂L/∂W‖ at initialization (log scale)")
        ax.set_title(f"depth {depths[-1]}, batch norm {'on' if bn else 'off'}, residual {'on' if res else 'off'}")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(True, which="both", alpha=0.3)
        section = Section(f"Batch norm {'on' if bn else 'off'}, residual {'on' if res else 'off'}",
                          paragraphs=["Each line is one network's gradient norm per weight layer at initialization. "
                                      "A line rising steeply to the right means the first layers receive orders of "
                                      "magnitude less gradient than the last (vanishing); a line far above 1 explodes."])
        section.figures.append((figure_png(fig), f"per-layer gradient norms, depth {depths[-1]}"))
        header = ["activation", "init", *[f"depth {d}" for d in depths]]
        rows = []
        for act in dict.fromkeys(r["activation"] for r in group):
            for init in dict.fromkeys(r["init"] for r in group):
                by_depth = {r["depth"]: r["first_to_last"] for r in group if r["activation"] == act and r["init"] == init}
                if by_depth:
                    rows.append([act, init, *[by_depth.get(d, "") for d in depths]])
        section.table = (header, rows)
        section.paragraphs.append("Table: ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖ at initialization (1 is balanced; "
                                  "1e-6 means the first layer learns a million times slower).")
        if result.get("steps"):
            fig, ax = plt.subplots(figsize=(9, 4))
            for r in deepest:
                ax.plot(r["losses"], label=f"{r['activation']} + {r['init']}")
            ax.set_xlabel("SGD step")
            ax.set_ylabel("training loss (cross-entropy)")
            ax.set_yscale("log")
            ax.legend(fontsize=7, ncol=2)
            section.figures.append((figure_png(fig), f"training loss, depth {depths[-1]}"))
        report.sections.append(section)
    report.findings = depth_findings(records)
    return report


def depth_findings(records: Sequence[dict[str, Any]]) -> list[str]:
    """Plain-language findings: where gradients vanish or explode, and which configurations are balanced."""
    findings = []
    for r in records:
        ratio = r["first_to_last"]
        name = (f"{r['activation']} + {r['init']} init, depth {r['depth']}"
                f"{', batch norm' if r['batch_norm'] else ''}{', residual' if r['residual'] else ''}")
        biggest = max(r["init_norms"])
        if not math.isfinite(ratio) or not math.isfinite(biggest):
            findings.append(f"{name}: the gradient is not finite at initialization.")
        elif ratio < 1e-3:
            findings.append(f"{name}: vanishing — the first layer gets {ratio:.1e} of the last layer's gradient.")
        elif biggest > 1e3:
            findings.append(f"{name}: exploding — gradient norms reach {biggest:.1e}; clip gradients or shrink the init.")
        elif biggest < 1e-3:
            findings.append(f"{name}: every layer's gradient is tiny (at most {biggest:.1e}): the signal dies out with depth.")
        if r.get("finite") is False:
            findings.append(f"{name}: training diverged (non-finite loss).")
    configs: dict[str, list[bool]] = {}
    for r in records:
        ok = 1e-2 <= r["first_to_last"] <= 1e2 and 1e-3 <= max(r["init_norms"]) <= 1e3
        configs.setdefault(f"{r['activation']} + {r['init']}", []).append(ok)
    healthy = sorted(name for name, oks in configs.items() if all(oks))
    if healthy:
        findings.append("Healthy at every tested depth (first/last ratio within 1e-2..1e2, norms within 1e-3..1e3): "
                        + ", ".join(healthy) + ".")
    return findings


def init_report(result: dict[str, Any]) -> Report:
    """Report of `studies.init_study`: activation std per layer under each initializer."""
    plt = _pyplot()
    report = Report("Initialization and signal propagation in a deep ReLU network", data=result)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, stds in result["stds"].items():
        ax.semilogy(range(1, len(stds) + 1), stds, marker=".", label=f"{name} (×{result['ratio_per_layer'][name]:.3f} per layer)")
    ax.set_xlabel("layer")
    ax.set_ylabel("std of ReLU activations (log scale)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    section = Section(f"{result['depth']} ReLU layers of width {result['width']}, no biases, N(0, 1) inputs",
                      paragraphs=["He et al. (2015): Var[a_l] = (fan_in·Var[W]/2)·Var[a_(l-1)]. Xavier's Var[W] = 1/width "
                                  "halves the variance at every layer (std × 0.707); He's 2/fan_in keeps it constant."])
    section.figures.append((figure_png(fig), "activation std per layer"))
    section.table = (["init", "std at layer 1", f"std at layer {result['depth']}", "factor per layer"],
                     [[n, s[0], s[-1], result["ratio_per_layer"][n]] for n, s in result["stds"].items()])
    report.sections.append(section)
    report.findings = [f"{n}: activations scale by {result['ratio_per_layer'][n]:.3f} per layer "
                       f"({s[-1] / s[0]:.1e} after {result['depth']} layers)." for n, s in result["stds"].items()]
    return report
