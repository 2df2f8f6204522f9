"""How one example looks in a report: an image thumbnail, tokens, or a small line plot; heat maps and overlays.

Images are drawn straight to PNG (matplotlib's imsave, no figure), so a gallery of dozens stays small.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from jdl.diagnostics.report.page import png_data_uri, pyplot


def as_image(example: Any) -> np.ndarray | None:
    """An example as an (H, W) or (H, W, 3) float image when it is one: (H, W), (H, W, 1|3), or a flat square (H·H,)."""
    a = np.asarray(example)
    if not np.issubdtype(a.dtype, np.floating):
        return None
    if a.ndim == 3 and a.shape[-1] in (1, 3) and min(a.shape[:2]) >= 4:
        return a[..., 0] if a.shape[-1] == 1 else a
    if a.ndim == 2 and min(a.shape) >= 4 and a.shape[0] == a.shape[1]:
        return a
    if a.ndim == 1 and a.size >= 16 and math.isqrt(a.size) ** 2 == a.size:
        side = math.isqrt(a.size)
        return a.reshape(side, side)
    return None


def kind(example: Any) -> str:
    """"image", "tokens" (integer ids), "sequence" (floats (T,) or (T, F)) or "vector"."""
    a = np.asarray(example)
    if as_image(a) is not None:
        return "image"
    if np.issubdtype(a.dtype, np.integer) and a.ndim == 1:
        return "tokens"
    if a.ndim in (1, 2) and a.shape[0] >= 8:
        return "sequence"
    return "vector"


def _normalized(image: np.ndarray) -> np.ndarray:
    low, high = float(np.min(image)), float(np.max(image))
    return (image - low) / (high - low) if high > low else np.zeros_like(image, dtype=float)


def image_png(image: np.ndarray, cmap: str = "gray") -> bytes:
    """An (H, W) image (scaled to its own range) or an (H, W, 3) RGB image in [0, 1] as PNG bytes."""
    import matplotlib.image

    buffer = io.BytesIO()
    if image.ndim == 2:
        matplotlib.image.imsave(buffer, _normalized(image), cmap=cmap, vmin=0.0, vmax=1.0, format="png")
    else:
        matplotlib.image.imsave(buffer, np.clip(_normalized(image), 0, 1), format="png")
    return buffer.getvalue()


def heat_rgb(attribution: np.ndarray) -> np.ndarray:
    """|attribution| (H, W[, C] summed over C) scaled to its 99th percentile, through the "inferno" colour map: (H, W, 3)."""
    import matplotlib

    a = np.abs(np.asarray(attribution, float))
    if a.ndim == 3:
        a = a.sum(-1)
    top = np.percentile(a, 99) or (a.max() or 1.0)
    return matplotlib.colormaps["inferno"](np.clip(a / top, 0, 1))[..., :3]


def overlay_rgb(image: np.ndarray, attribution: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The image in grey with the heat map blended on top, weighted by the attribution's strength: (H, W, 3)."""
    grey = _normalized(image if image.ndim == 2 else image.mean(-1))
    heat = heat_rgb(attribution)
    a = np.abs(np.asarray(attribution, float))
    strength = np.clip((a.sum(-1) if a.ndim == 3 else a) / ((np.percentile(a, 99) or 1.0)), 0, 1)[..., None]
    return (1 - alpha * strength) * grey[..., None] + alpha * strength * heat


def token_html(tokens: Sequence[Any], weights: Sequence[float] | None = None, vocabulary: Sequence[str] | None = None,
               limit: int = 64) -> str:
    """Tokens as spans, shaded red (positive) / blue (negative) by weight when given (scaled to the largest |weight|)."""
    tokens = list(np.asarray(tokens).reshape(-1))[:limit]
    weights = None if weights is None else np.asarray(weights, float).reshape(-1)
    scale = float(np.max(np.abs(weights[:limit]))) if weights is not None and weights.size else 0.0
    scale = scale or 1.0
    spans = []
    for i, token in enumerate(tokens):
        word = vocabulary[int(token)] if vocabulary is not None and 0 <= int(token) < len(vocabulary) else str(token)
        style = ""
        if weights is not None:
            w = float(weights[i]) / scale
            colour = f"rgba(214,39,40,{abs(w):.2f})" if w > 0 else f"rgba(31,119,180,{abs(w):.2f})"
            style = f" style='background:{colour}' title='{float(weights[i]):.3g}'"
        spans.append(f"<span{style}>{html.escape(word)}</span>")
    return "<div class='tokens'>" + "".join(spans) + "</div>"


def sequence_png(example: Any) -> bytes:
    """A small line plot of a float sequence (T,) or (T, F) (at most 4 features drawn)."""
    from jdl.diagnostics.report.page import figure_png

    plt = pyplot()
    a = np.asarray(example, float)
    a = a.reshape(a.shape[0], -1)[:, :4]
    fig, ax = plt.subplots(figsize=(1.6, 1.0))
    ax.plot(a, linewidth=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.subplots_adjust(0, 0, 1, 1)
    return figure_png(fig)


def example_html(example: Any, vocabulary: Sequence[str] | None = None) -> str:
    """The example itself as HTML: a thumbnail, its tokens, or a small line plot (a vector: its first values)."""
    image = as_image(example)
    if image is not None:
        return f"<img alt='example' src='{png_data_uri(image_png(image))}'>"
    what = kind(example)
    if what == "tokens":
        return token_html(example, vocabulary=vocabulary, limit=24)
    if what == "sequence":
        return f"<img alt='sequence' style='width:160px;height:100px' src='{png_data_uri(sequence_png(example))}'>"
    values = np.asarray(example).reshape(-1)
    return "<code>" + html.escape(", ".join(f"{v:.3g}" for v in values[:8]) + (" …" if values.size > 8 else "")) + "</code>"


def card(content: str, lines: Sequence[str], wrong: bool = False) -> str:
    """A gallery card: content above a few escaped caption lines; red when the prediction is wrong."""
    caption = "<br>".join(html.escape(line) for line in lines)
    return f"<div class='card{' wrong' if wrong else ''}'>{content}<br>{caption}</div>"


def gallery(cards: Sequence[str]) -> str:
    return "<div class='gallery'>" + "".join(cards) + "</div>"
