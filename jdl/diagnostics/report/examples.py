"""The run's examples through its model: predictions, labels, class names, and the attributions section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jdl.diagnostics.report import views
from jdl.diagnostics.report.page import Section


def _logits_fn(trainer: Any, state: Any) -> Any:
    """x -> the model's raw outputs in inference mode (one compiled program per input shape), or None without a state."""
    if state is None:
        return None
    import jax

    from jdl.nn.mode import mode_kwargs

    model = state.model
    kwargs = dict(getattr(getattr(trainer, "objective", None), "eval_kwargs", ()) or mode_kwargs(model, False))
    apply = jax.jit(lambda variables, x: model.apply(variables, x, **kwargs))
    return lambda x: apply(state.variables, x)


def _predictions(fn: Any, x: np.ndarray) -> np.ndarray | None:
    import jax

    try:
        out = jax.device_get(fn(np.asarray(x)))
    except Exception:  # a model whose outputs are not one array: no predictions shown
        return None
    out = np.asarray(out) if not isinstance(out, (dict, tuple, list)) else None
    if out is None or out.ndim != 2:
        return None
    return out.argmax(-1) if out.shape[1] > 1 else (out[:, 0] > 0).astype(int)


def _label(y: Any, i: int) -> Any:
    if y is None:
        return None
    value = np.asarray(y)[i]
    return int(value) if np.ndim(value) == 0 else int(np.argmax(value))


def _labels(y: Any, n: int) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)[:n]
    return y.astype(int) if y.ndim == 1 else y.argmax(-1)


def _name(value: Any, names: Any) -> str:
    if isinstance(names, (list, tuple)) and isinstance(value, int) and 0 <= value < len(names):
        return str(names[value])
    return str(value)


def attribution_section(fn: Any, x: np.ndarray, y: np.ndarray | None, info: Mapping[str, Any],
                        methods: tuple[str, ...] = ("gradient", "smoothgrad")) -> Section | None:
    """Saliency of a few test examples for their predicted class: image, heat map, overlay (or shaded tokens)."""
    from jdl.diagnostics import saliency

    predicted = _predictions(fn, x)
    if predicted is None or views.kind(x[0]) not in ("image", "tokens"):
        return None
    class_names = info.get("class_names")
    section = Section("Attributions of test examples", paragraphs=[
        "Which input entries the predicted class's score depends on: vanilla gradient (|∂s/∂x|) and SmoothGrad "
        "(gradients averaged over noisy copies), each as a heat map and an overlay on the example. These two pass "
        "Adebayo et al.'s (2018) weight-randomization check on digits; gradient × input and integrated gradients "
        "with a zero baseline are zero wherever x is, so they are not shown as evidence."])
    cards = []
    if views.kind(x[0]) == "tokens":
        weights = np.asarray(saliency.embedding_attributions(fn, x, target=predicted))
        for i in range(len(x)):
            lines = [f"test #{i}: predicted {_name(int(predicted[i]), class_names)}"
                     + (f", label {_name(int(y[i]), class_names)}" if y is not None else "")]
            cards.append(views.card(views.token_html(x[i], weights[i], info.get("vocabulary")), lines,
                                    y is not None and predicted[i] != y[i]))
        section.blocks.append(views.gallery(cards))
        return section
    x = np.asarray(x, np.float32)
    maps = {m: np.asarray(getattr(saliency, m)(fn, x, target=predicted.astype(np.int32))) for m in methods}
    for i in range(len(x)):
        image = views.as_image(x[i])
        tiles = [("input", views.image_png(image))]
        for m, values in maps.items():
            attribution = values[i].reshape(image.shape) if values[i].size == image.size else values[i]
            tiles.append((f"{m} heat map", views.image_png(views.heat_rgb(attribution))))
            tiles.append((f"{m} overlay", views.image_png(views.overlay_rgb(image, attribution))))
        content = "".join(f"<img alt='{t}' title='{t}' src='{views.png_data_uri(p)}'>" for t, p in tiles)
        lines = [f"test #{i}: predicted {_name(int(predicted[i]), class_names)}"
                 + (f", label {_name(int(y[i]), class_names)}" if y is not None else ""),
                 "input · " + " · ".join(f"{m} heat, overlay" for m in methods)]
        cards.append(views.card(content, lines, y is not None and predicted[i] != y[i]))
    section.blocks.append(views.gallery(cards))
    return section
