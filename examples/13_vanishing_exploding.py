"""Vanishing and exploding gradients through depth, and their cures, on digits.

1. At initialization, a 10-hidden-layer MLP of width 256: the ratio ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖
   for sigmoid + uniform(±1/√fan_in) (vanishing: sigmoid' ≤ 0.25 per layer), tanh + Xavier and
   ReLU + He (balanced), and a deliberately large N(0, 1) init (exploding).
2. The cures for the sigmoid network: batch norm, residual connections.
3. Training for a few hundred SGD steps: the vanishing network barely moves, the cured ones learn;
   the exploding one diverges without gradient clipping and trains with clipnorm.
4. He et al.'s signal-propagation picture: activation std per layer of a 30-layer ReLU net.

Run: python examples/13_vanishing_exploding.py [--steps 300] [--quick]
"""

import argparse
import sys

import numpy as np

from jdl.diagnostics import studies


def row(record: dict, label: str) -> str:
    norms = record["init_norms"]
    trained = f"{record['final_loss']:>12.4f}" if "final_loss" in record else ""
    return f"{label:<34}{norms[0]:>11.2e}{norms[-1]:>11.2e}{record['first_to_last']:>12.2e}{trained}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="full-batch SGD steps for part 3")
    parser.add_argument("--quick", action="store_true", help="width 64, depth 6, 30 steps")
    args = parser.parse_args(argv)
    width, depth, steps = (64, 6, 30) if args.quick else (256, 10, args.steps)
    examples = 256 if args.quick else 512

    print(f"1. at initialization: {depth} hidden layers of width {width}, {examples} digits")
    header = f"{'network':<34}{'‖g_first‖':>11}{'‖g_last‖':>11}{'first/last':>12}"
    print(header)
    for act, init in (("sigmoid", "uniform"), ("tanh", "xavier_normal"), ("relu", "he_normal"), ("relu", "large")):
        result = studies.depth_study(activations=(act,), inits=(init,), depths=(depth,), batch_norm=(False,),
                                     width=width, examples=examples)
        print(row(result["records"][0], f"{act} + {init}"))

    print("\n2. cures for sigmoid + uniform")
    print(header)
    for bn, res, label in ((True, False, "+ batch norm"), (False, True, "+ residual connections"),
                           (True, True, "+ both")):
        result = studies.depth_study(activations=("sigmoid",), inits=("uniform",), depths=(depth,), batch_norm=(bn,),
                                     residual=(res,), width=width, examples=examples)
        print(row(result["records"][0], f"sigmoid + uniform {label}"))

    print(f"\n3. training: {steps} full-batch SGD steps (learning rate 0.1; clipping at global norm 1)")
    print(header + f"{'final loss':>12}")
    for act, init, bn, clip, label in (("sigmoid", "uniform", False, None, "sigmoid + uniform"),
                                       ("sigmoid", "uniform", True, None, "sigmoid + uniform + batch norm"),
                                       ("relu", "he_normal", False, None, "relu + he"),
                                       ("relu", "large", False, None, "relu + large init"),
                                       ("relu", "large", False, 1.0, "relu + large init + clipnorm 1")):
        result = studies.depth_study(activations=(act,), inits=(init,), depths=(depth,), batch_norm=(bn,),
                                     width=width, steps=steps, learning_rate=0.1, clipnorm=clip, examples=examples)
        record = result["records"][0]
        line = row(record, label)
        print(line if record["finite"] else line + "   diverged (non-finite loss)")

    signal = studies.init_study(depth=10 if args.quick else 30, width=width * 2)
    print(f"\n4. activation std per layer, {signal['depth']} ReLU layers (He et al. 2015)")
    for name, stds in signal["stds"].items():
        shown = " ".join(f"{s:.2g}" for s in np.asarray(stds)[:: max(1, len(stds) // 6)])
        print(f"  {name:<14} ×{signal['ratio_per_layer'][name]:.3f} per layer: {shown}")


if __name__ == "__main__":
    sys.exit(main())
