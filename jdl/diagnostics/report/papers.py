"""Reports of the reproduced papers: the paper's numbers beside jdl's, and findings saying whether they agree."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jdl.diagnostics.report.page import Report, Section, figure_png, pyplot

GLOROT_CRITERIA = {"shrinks": 0.5, "contrast": 2.0, "weight_grad_spread": 4.0}
# Figs. 6-7 "agree" when the standard init's last/first-layer std ratio is below `shrinks` and the normalized
# init's ratio is at least `contrast` times larger; Fig. 8 when Var[dL/dW] varies less than `weight_grad_spread`x.


def _verdict(ok: bool) -> str:
    return "agrees" if ok else "does not agree"


def _histogram_figure(plt: Any, result: dict, key: str, limit: float, xlabel: str) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    edges = np.linspace(-limit, limit, result["bins"] + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    for ax, (name, m) in zip(axes, result["inits"].items()):
        for i, counts in enumerate(m[key]):
            counts = np.asarray(counts, np.float64)
            ax.plot(centers, counts / counts.sum(), label=f"layer {i + 1}")
        ax.set_title(f"{name} init")
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("fraction of values")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    return figure_png(fig)


def glorot_findings(result: dict[str, Any]) -> list[str]:
    """Does each of Glorot & Bengio's observations hold here? One finding per figure, with the numbers."""
    c = GLOROT_CRITERIA
    act = {k: m["activation_std"][-1] / m["activation_std"][0] for k, m in result["inits"].items()}
    back = {k: m["backprop_std"][0] / m["backprop_std"][-1] for k, m in result["inits"].items()}
    spread = {k: max(m["weight_grad_var"]) / min(m["weight_grad_var"]) for k, m in result["inits"].items()}
    sv = {k: m["mean_singular_value"] for k, m in result["inits"].items()}
    paper_sv, tol = result["paper"]["mean_singular_value"], result["singular_value_tolerance"]
    last = result["layers"]
    def contrast(ratios):
        return ratios["standard"] < c["shrinks"] and ratios["normalized"] >= c["contrast"] * ratios["standard"]

    return [
        f"Fig. 6 (activations: under standard init the peak at 0 grows with depth, under normalized init much less) "
        f"{_verdict(contrast(act))}: activation std of layer {last} / layer 1 is {act['standard']:.2f} standard "
        f"(criterion < {c['shrinks']}) and {act['normalized']:.2f} normalized (criterion ≥ {c['contrast']:g}× "
        f"the standard ratio).",
        f"Fig. 7 (back-propagated gradients shrink toward the input under standard init, much less under "
        f"normalized) {_verdict(contrast(back))}: std of ∂ℓ/∂s at layer 1 / layer {last} is {back['standard']:.2f} "
        f"standard (criterion < {c['shrinks']}) and {back['normalized']:.2f} normalized (criterion ≥ "
        f"{c['contrast']:g}× the standard ratio).",
        f"Fig. 8 (weight gradients do not shrink with depth, even under standard init) "
        f"{_verdict(max(spread.values()) < c['weight_grad_spread'])}: largest / smallest Var[∂L/∂W] over the "
        f"{last} layers is {spread['standard']:.2f} standard and {spread['normalized']:.2f} normalized "
        f"(criterion < {c['weight_grad_spread']}).",
        f"Sec. 4.2.2 (mean singular value of the layer Jacobians ≈ {paper_sv['standard']} standard, "
        f"≈ {paper_sv['normalized']} normalized) "
        f"{_verdict(all(abs(sv[k] - paper_sv[k]) <= tol for k in sv))}: jdl measures {sv['standard']:.3f} and "
        f"{sv['normalized']:.3f} (tolerance ±{tol}).",
    ]


def glorot_report(result: dict[str, Any]) -> Report:
    """Report of `papers.glorot_study`: histograms per layer (Figs. 6–7), weight-gradient variance (Fig. 8), Jacobians."""
    plt = pyplot()
    report = Report("Glorot & Bengio (2010) at initialization: standard vs normalized init", data=result)
    intro = (f"{result['layers']} tanh hidden layers of {result['width']} units on {result['examples']} digits, "
             "biases 0. Standard init W ~ U[−1/√n_in, 1/√n_in]; normalized init W ~ U[±√6/√(n_in + n_out)].")
    section = Section("Activations and back-propagated gradients per layer (paper Figs. 6 and 7)", paragraphs=[intro])
    section.figures.append((_histogram_figure(plt, result, "activation_hist", 1.0, "tanh activation value"),
                            "activation histograms per layer (Fig. 6)"))
    section.figures.append((_histogram_figure(plt, result, "backprop_hist", result["backprop_limit"],
                                              "back-propagated gradient ∂ℓ/∂s"),
                            "back-propagated gradient histograms per layer (Fig. 7)"))
    layers = range(1, result["layers"] + 1)
    section.table = (["layer", *[f"{k} {q}" for k in result["inits"] for q in ("activation std", "∂ℓ/∂s std")]],
                     [[i, *[m[q][i - 1] for m in result["inits"].values() for q in ("activation_std", "backprop_std")]]
                      for i in layers])
    report.sections.append(section)
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, m in result["inits"].items():
        ax.semilogy(list(layers), m["weight_grad_var"], marker="o", label=f"{name} init")
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.set_ylabel("Var[∂L/∂W] (log scale)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    weights = Section("Weight-gradient variance per layer (paper Fig. 8)",
                      paragraphs=["The paper's Eq. 14: in the linear regime Var[∂L/∂W_i] does not depend on i, so "
                                  "even where the back-propagated gradients shrink, the weight gradients do not."])
    weights.figures.append((figure_png(fig), "weight-gradient variance per layer"))
    report.sections.append(weights)
    paper_sv = result["paper"]["mean_singular_value"]
    jac = Section("Mean singular value of the layer Jacobians (paper Sec. 4.2.2)",
                  paragraphs=[f"J_i = ∂h_(i+1)/∂h_i = diag(1 − h_(i+1)²)·W_(i+1)ᵀ on {result['jacobian_examples']} "
                              "examples; the paper reports ≈ 0.8 with normalized and ≈ 0.5 with standard init."])
    jac.table = (["init", "paper", "jdl (all layers)",
                  *[f"J_{i} (layer {i}→{i + 1})" for i in range(1, result["layers"])]],
                 [[k, paper_sv[k], m["mean_singular_value"], *m["singular_values_mean"]]
                  for k, m in result["inits"].items()])
    report.sections.append(jac)
    report.findings = glorot_findings(result)
    return report


def he_findings(result: dict[str, Any]) -> list[str]:
    """Does He et al.'s closed form hold per layer, and does Xavier stall where He converges?"""
    chance, x, h = result["chance_loss"], result["inits"]["xavier_normal"], result["inits"]["he_normal"]
    depth = result["depth"]
    findings = []
    for name, m in result["inits"].items():
        ratio = np.asarray(m["measured_over_closed_form"])
        findings.append(f"{name}: activation std scales by {m['ratio_per_layer']:.3f} per layer (closed form "
                        f"{result['paper'][name.split('_')[0] + '_ratio_per_layer']:.3f}); measured / closed form stays "
                        f"within {ratio.min():.2f}–{ratio.max():.2f} over the {depth} layers.")
    stalled = x["final_loss"] >= result["stalled_below"] * chance
    converged = h["final_loss"] <= result["converged_below"] * chance
    findings.insert(0, f"Fig. 3 (the {depth}-layer ReLU net stalls with Xavier init and converges with He init) "
                       f"{_verdict(stalled and converged)}: after {result['steps']} SGD steps the training loss is "
                       f"{x['final_loss']:.3f} with Xavier (chance ln 10 = {chance:.3f}; stalled means ≥ "
                       f"{result['stalled_below']:.0%} of it) and {h['final_loss']:.3f} with He (converging means ≤ "
                       f"{result['converged_below']:.0%} of chance).")
    return findings


def he_report(result: dict[str, Any]) -> Report:
    """Report of `papers.he_study`: activation std per layer against the closed form, and both loss curves."""
    plt = pyplot()
    report = Report(f"He et al. (2015): a {result['depth']}-layer plain ReLU network, Xavier vs He init", data=result)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, m in result["inits"].items():
        line, = ax.semilogy(range(1, result["depth"] + 1), m["activation_std"], marker=".", label=f"{name} measured")
        ax.semilogy(range(1, result["depth"] + 1), m["closed_form_std"], linestyle="--", color=line.get_color(),
                    label=f"{name} closed form")
    ax.set_xlabel("layer")
    ax.set_ylabel("std of ReLU activations (log scale)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(True, which="both", alpha=0.3)
    signal = Section(f"Signal through {result['depth']} bias-free ReLU layers of width {result['signal_width']}",
                     paragraphs=["Closed form (He et al. Eq. 10 with rectified Gaussians): Var[y_1] = n·Var[W], "
                                 "Var[y_l] = (n·Var[W]/2)·Var[y_(l−1)], std(a_l) = √(1/2 − 1/(2π))·√Var[y_l]."])
    signal.figures.append((figure_png(fig), "activation std per layer, measured and closed form"))
    signal.table = (["init", "paper's factor per layer", "jdl's factor per layer", f"std at layer {result['depth']}",
                     f"closed form at layer {result['depth']}"],
                    [[n, result["paper"][n.split("_")[0] + "_ratio_per_layer"], m["ratio_per_layer"],
                      m["activation_std"][-1], m["closed_form_std"][-1]] for n, m in result["inits"].items()])
    report.sections.append(signal)
    fig, ax = plt.subplots(figsize=(8, 4))
    for name, m in result["inits"].items():
        mean, spread = np.asarray(m["losses"]), np.asarray(m["losses_spread"])
        line, = ax.plot(mean, label=f"{name}")
        if result["seeds"] > 1:
            ax.fill_between(range(len(mean)), mean - spread, mean + spread, color=line.get_color(), alpha=0.2)
    ax.axhline(result["chance_loss"], color="k", linestyle=":", label="chance (ln 10)")
    ax.set_xlabel("full-batch SGD step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(True, alpha=0.3)
    train = Section(f"Training the {result['depth']}-layer net on digits (paper Fig. 3)",
                    paragraphs=[f"Width {result['width']}, {result['examples']} examples, SGD at "
                                f"{result['learning_rate']:g}, {result['seeds']} seed(s)"
                                + (" (band: ± std over seeds)" if result["seeds"] > 1 else "")
                                + f". The paper: {result['paper']['training']}."])
    train.figures.append((figure_png(fig), "training loss per step"))
    report.sections.append(train)
    report.findings = he_findings(result)
    return report


def pascanu_findings(result: dict[str, Any]) -> list[str]:
    """Does plain descent jump at the wall, and does clipped descent cross it with bounded steps?"""
    plain, clipped = result["runs"]["plain"], result["runs"]["clipped"]
    bound = result["learning_rate"] * result["clipnorm"]
    jumped = plain["largest_step"] >= result["jump_factor"] * bound
    crossed = clipped["x_T_start"] * clipped["x_T_end"] < 0 and clipped["largest_step"] <= bound * (1 + 1e-3)
    return [
        f"Fig. 6 (plain gradient descent jumps at the cliff, norm clipping crosses it) {_verdict(jumped and crossed)}: "
        f"plain descent's largest step is {plain['largest_step']:.3g} (step {plain['largest_step_at']}, "
        f"‖∇E‖ = {plain['largest_grad_norm']:.3g}), {plain['largest_step'] / plain['median_step']:.0f}× its median "
        f"step; clipped steps stay ≤ lr·c = {bound:.3g} while ‖∇E‖ reaches {clipped['largest_grad_norm']:.3g}, and "
        f"x_T goes from {clipped['x_T_start']:.2f} to {clipped['x_T_end']:.2f} (across the wall).",
        f"Final error: plain {plain['final_error']:.3g}, clipped {clipped['final_error']:.3g} after "
        f"{result['iterations']} steps (target x_T = {result['target']}).",
    ]


def pascanu_report(result: dict[str, Any]) -> Report:
    """Report of `papers.pascanu_study`: the error surface with both descent paths, and their step lengths."""
    plt = pyplot()
    report = Report("Pascanu, Mikolov & Bengio (2013): the cliff of a one-unit recurrent network", data=result)
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(8, 6))
    surface = np.maximum(np.asarray(result["surface"], np.float64), 1e-6)
    mesh = ax.pcolormesh(result["w"], result["b"], surface, norm=LogNorm(), cmap="viridis", shading="auto")
    fig.colorbar(mesh, ax=ax, label="E(w, b) = (x_T − target)² (log scale)")
    for name, style in (("plain", "r.-"), ("clipped", "w.-")):
        path = np.asarray(result["runs"][name]["path"])
        ax.plot(path[:, 0], path[:, 1], style, markersize=3, linewidth=1, label=f"{name} descent")
    ax.set_xlim(result["w"][0], result["w"][-1])
    ax.set_ylim(result["b"][0], result["b"][-1])
    ax.set_xlabel("w (recurrent weight)")
    ax.set_ylabel("b (bias)")
    ax.legend(loc="upper right")
    section = Section(f"Error surface, T = {result['steps']}, x_0 = {result['x0']}, target x_T = {result['target']}",
                      paragraphs=[f"x_t = w·σ(x_(t−1)) + b. Both runs start at (w, b) = {tuple(result['start'])} "
                                  f"with learning rate {result['learning_rate']:g}; clipping rescales the gradient to "
                                  f"norm {result['clipnorm']:g} when it is larger. The paper: {result['paper']['claim']}."])
    section.figures.append((figure_png(fig), "error surface with the plain and the clipped descent"))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name in ("plain", "clipped"):
        ax.semilogy(result["runs"][name]["step_lengths"], label=name)
    ax.set_xlabel("descent step")
    ax.set_ylabel("step length ‖Δ(w, b)‖ (log scale)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    section.figures.append((figure_png(fig), "step lengths"))
    section.table = (["run", "largest step", "at step", "largest ‖∇E‖", "median step", "final error", "x_T start",
                      "x_T end"], [[n, r["largest_step"], r["largest_step_at"], r["largest_grad_norm"], r["median_step"],
                                    r["final_error"], r["x_T_start"], r["x_T_end"]] for n, r in result["runs"].items()])
    report.sections.append(section)
    report.findings = pascanu_findings(result)
    return report


def noise_scale_findings(result: dict[str, Any]) -> list[str]:
    """Does B_simple grow as the loss falls, and do the per-example and two-batch estimates agree?"""
    records, tol = result["records"], result["tolerance"]
    first, last = records[0], records[-1]
    grows = last["exact"]["b_simple"] > 2 * first["exact"]["b_simple"] and last["loss"] < first["loss"]
    rel = [abs(r["per_example"]["b_simple"] - r["two_batch"]["b_simple"]) / abs(r["two_batch"]["b_simple"])
           for r in records]
    worst = int(np.argmax(rel))
    off = [abs(r["per_example"]["b_simple"] - r["exact"]["b_simple"]) / r["exact"]["b_simple"] for r in records]
    return [
        f"B_simple grows as the loss falls (McCandlish et al.) {_verdict(grows)}: exact B_simple "
        f"{first['exact']['b_simple']:.0f} at loss {first['loss']:.3f} (step 0) → {last['exact']['b_simple']:.0f} at "
        f"loss {last['loss']:.3f} (step {last['step']}).",
        f"The per-example estimate {_verdict(max(rel) <= tol)} with the two-batch estimator of App. A (tolerance "
        f"{tol:.0%}): the largest relative difference is {max(rel):.1%}, at step {records[worst]['step']} "
        f"({records[worst]['per_example']['b_simple']:.0f} vs {records[worst]['two_batch']['b_simple']:.0f}).",
        f"Against the exact value on all {result['examples']} training examples the per-example estimate is off by at "
        f"most {max(off):.1%} ({result['batches']} batches of {result['big']} per checkpoint).",
    ]


def noise_scale_report(result: dict[str, Any]) -> Report:
    """Report of `papers.noise_scale_study`: B_simple and the loss over training, by both estimators and exactly."""
    plt = pyplot()
    report = Report(f"McCandlish et al. (2018): the simple noise scale on {result['data']}", data=result)
    steps = [r["step"] for r in result["records"]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, style in (("exact", "k-"), ("per_example", "o-"), ("two_batch", "s--")):
        ax.semilogy(steps, [r[key]["b_simple"] if r[key]["b_simple"] > 0 else math.nan for r in result["records"]],
                    style, label={"exact": "exact (whole training set)", "per_example": "per-example estimate",
                                  "two_batch": f"two batch sizes ({result['small']}, {result['big']})"}[key])
    ax.set_xlabel("SGD step")
    ax.set_ylabel("B_simple = tr(Σ)/|G|² (log scale)")
    loss_ax = ax.twinx()
    loss_ax.plot(steps, [r["loss"] for r in result["records"]], color="tab:red", alpha=0.6, label="training loss")
    loss_ax.set_ylabel("training loss", color="tab:red")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    section = Section(f"B_simple during training: MLP ({result['hidden']} hidden), SGD at {result['learning_rate']:g}, "
                      f"batch {result['batch_size']}",
                      paragraphs=[f"At each checkpoint both estimators use the same {result['batches']} batches of "
                                  f"{result['big']} examples drawn with replacement; the unbiased |G|² and tr(Σ) are "
                                  "averaged over the batches, then divided. The paper: " + result["paper"]["claim"] + "."])
    section.figures.append((figure_png(fig), "B_simple and the training loss"))
    section.table = (["step", "loss", "exact", "per-example", "two-batch", "per-example / two-batch"],
                     [[r["step"], r["loss"], r["exact"]["b_simple"], r["per_example"]["b_simple"],
                       r["two_batch"]["b_simple"], r["per_example"]["b_simple"] / r["two_batch"]["b_simple"]]
                      for r in result["records"]])
    report.sections.append(section)
    report.findings = noise_scale_findings(result)
    return report
