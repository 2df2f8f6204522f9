"""`jdl explain`: a page of attributions for a model's examples: per image the original, a heat map and an
overlay for each method; per sequence of tokens, the tokens shaded by their attribution."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jdl.diagnostics.report import views
from jdl.diagnostics.report.page import Report, Section
from jdl.diagnostics.report.training import _name, _predictions

METHODS = ("gradient", "smoothgrad", "integrated_gradients")


def explain_report(fn: Callable[[Any], Any], x: Any, y: Any = None, *, info: Mapping[str, Any] | None = None,
                   methods: Sequence[str] = METHODS, title: str = "Attributions") -> Report:
    """Attributions of fn's predicted class for examples x (n, ...): images as original / heat map / overlay, tokens shaded.

    fn maps a batch to outputs (n, classes); y (n,) labels, shown beside the predictions; info: the
    data set's info (class_names, vocabulary). Token ids are attributed through the model's embedding
    (gradient × embedding per token) whatever `methods` says.
    """
    from jdl.diagnostics import saliency

    for m in methods:
        if m not in METHODS:
            raise ValueError(f"methods must be among {METHODS}, got {m!r}")
    x = np.asarray(x)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x must be a batch of at least one example, got shape {x.shape}")
    info = dict(info or {})
    predicted = _predictions(fn, x)
    if predicted is None:
        raise ValueError("fn must map x to one array of outputs (n, classes) to explain its predictions")
    y = None if y is None else np.asarray(y).reshape(len(x), -1).argmax(-1) if np.ndim(y) > 1 else np.asarray(y)
    what = views.kind(x[0])
    class_names = info.get("class_names")
    report = Report(title, data={"predicted": predicted.tolist(), "labels": None if y is None else y.tolist()})
    caption = lambda i: (f"#{i}: predicted {_name(int(predicted[i]), class_names)}"  # noqa: E731
                         + (f", label {_name(int(y[i]), class_names)}" if y is not None else ""))
    if what == "tokens":
        weights = np.asarray(saliency.embedding_attributions(fn, x, target=predicted.astype(np.int32)))
        section = Section("Token attributions", paragraphs=[
            "Gradient × embedding per token for the predicted class: red raises its score, blue lowers it."])
        section.blocks.append(views.gallery([views.card(views.token_html(x[i], weights[i], info.get("vocabulary")),
                                                        [caption(i)], y is not None and predicted[i] != y[i])
                                             for i in range(len(x))]))
        report.sections.append(section)
        report.data["token_attributions"] = weights.tolist()
        return report
    if what != "image":
        raise ValueError(f"explain draws images (H, W[, C]) or token ids (T,); examples of shape {x.shape[1:]} are neither")
    x = x.astype(np.float32)
    target = predicted.astype(np.int32)
    maps = {m: np.asarray(getattr(saliency, m)(fn, x, target=target)) for m in methods}
    header = "".join(f"<th>{m.replace('_', ' ')}: heat map</th><th>overlay</th>" for m in methods)
    rows = []
    for i in range(len(x)):
        image = views.as_image(x[i])
        cells = [f"<td>{views.card(views.example_html(x[i]), [caption(i)], y is not None and predicted[i] != y[i])}</td>"]
        for m in methods:
            a = maps[m][i]
            a = a.reshape(image.shape) if a.size == image.size else a
            cells.append(f"<td><img class='tile' alt='{m} heat map' src='{views.png_data_uri(views.image_png(views.heat_rgb(a)))}'></td>")
            cells.append(f"<td><img class='tile' alt='{m} overlay' src='{views.png_data_uri(views.image_png(views.overlay_rgb(image, a)))}'></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    section = Section("Image attributions", paragraphs=[
        "For the predicted class of each example: the example, then per method a heat map of |attribution| "
        "(inferno colour map, scaled to its 99th percentile) and the heat map over the example. Vanilla gradient "
        "and SmoothGrad pass Adebayo et al.'s (2018) randomization check on digits; integrated gradients with the zero "
        "baseline is zero wherever the input is, so mass on ink proves nothing for it."])
    section.blocks.append("<table class='explain'><tr><th>example</th>" + header + "</tr>" + "".join(rows) + "</table>")
    report.sections.append(section)
    report.data["methods"] = list(methods)
    return report
