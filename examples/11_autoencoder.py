"""Autoencoders on digits: a dense autoencoder and a VAE with a 2-D code, reconstructions and latent maps.

The 8×8 digits (pixels scaled to [0, 1]) are squeezed through a 2-number code and rebuilt. The
dense autoencoder minimises the mean per-pixel binary cross-entropy; the VAE adds the KL term
KL(N(μ, σ²) ‖ N(0, I)), so its cost is −ELBO / 64 (see `jdl.models.autoencoder.VAE`). Both are
compared with the best linear 2-D code, PCA on the training set. Writes reconstruction grids
and 2-D latent scatter plots colored by digit to --out.

Run: python examples/11_autoencoder.py [--epochs 60] [--out runs/autoencoder] [--quick]
"""

import argparse
import os
import sys
import time

import numpy as np

import jdl
from jdl.models.autoencoder import VAE, Autoencoder, kl_standard_normal, latent_plot, reconstruction_grid


def pca_reconstruction(x_train, x_test, k):
    """Rank-k PCA reconstruction of x_test from the training set's mean and top-k principal axes."""
    mean = x_train.mean(axis=0)
    _, _, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    axes = vt[:k]
    return (x_test - mean) @ axes.T @ axes + mean


def per_pixel_bce(x, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(np.mean(-(x * np.log(p) + (1 - x) * np.log(1 - p))))


def run(epochs=60, hidden=(128, 32), train_size=None, seed=0):
    data = jdl.data.load("digits", seed=seed)
    x_train = data.x_train[:train_size]
    x_test, y_test = data.x_test, data.y_test
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0, "digits come scaled to [0, 1]"
    results = {"n_train": len(x_train), "n_test": len(x_test), "models": {}}
    for name, model in (("autoencoder", Autoencoder(encoder=hidden, latent_dim=2)),
                        ("vae", VAE(encoder=hidden, latent_dim=2))):
        trainer = jdl.Trainer(model, loss="binary_crossentropy", optimizer=jdl.optim.adam(2e-3))
        start = time.perf_counter()
        state, history = trainer.fit(x_train, x_train, epochs=epochs, batch_size=32, verbose=0, seed=seed)
        seconds = time.perf_counter() - start
        variables = {"params": state.params}
        reconstruction = np.asarray(trainer.predict(state, x_test))
        code = model.apply(variables, x_test, method=type(model).encode)
        entry = {
            "first_loss": history.history["loss"][0], "last_loss": history.history["loss"][-1],
            "test_cost": trainer.evaluate(state, x_test, x_test)["loss"],
            "bce": per_pixel_bce(x_test, reconstruction),
            "mse": float(np.mean((x_test - reconstruction) ** 2)),
            "seconds": seconds, "reconstruction": reconstruction,
            "code": np.asarray(code[0] if isinstance(code, tuple) else code),
        }
        if isinstance(code, tuple):
            entry["kl"] = float(np.mean(kl_standard_normal(*code)))
        results["models"][name] = entry
    pca = pca_reconstruction(x_train, x_test, 2)
    results["pca_mse"] = float(np.mean((x_test - pca) ** 2))
    results["mean_mse"] = float(np.mean((x_test - x_train.mean(axis=0)) ** 2))
    results["x_test"], results["y_test"] = x_test, y_test
    return results


def report(results, out):
    print(f"digits: {results['n_train']} training and {results['n_test']} test images of 8x8 pixels in [0, 1]; code size 2")
    print(f"\n{'model':<13}{'first loss':>11}{'last loss':>11}{'test cost':>11}{'test BCE':>10}{'test MSE':>10}{'seconds':>9}")
    for name, r in results["models"].items():
        print(f"{name:<13}{r['first_loss']:>11.4f}{r['last_loss']:>11.4f}{r['test_cost']:>11.4f}"
              f"{r['bce']:>10.4f}{r['mse']:>10.4f}{r['seconds']:>9.1f}")
    print(f"{'pca (k=2)':<13}{'':>11}{'':>11}{'':>11}{'':>10}{results['pca_mse']:>10.4f}")
    print(f"{'mean image':<13}{'':>11}{'':>11}{'':>11}{'':>10}{results['mean_mse']:>10.4f}")
    vae = results["models"]["vae"]
    print(f"\nvae test KL per image        {vae['kl']:.4f} nats")
    print(f"vae test -ELBO per image     {vae['bce'] * 64 + vae['kl']:.4f} nats  (64 x BCE + KL)")
    print(f"vae test cost x 64           {vae['test_cost'] * 64:.4f} nats  (the Trainer's cost is -ELBO / 64)")
    x_test, y_test = results["x_test"], results["y_test"]
    order = np.concatenate([np.flatnonzero(y_test == d)[:1] for d in range(10)])
    for name, r in results["models"].items():
        grid = reconstruction_grid(x_test[order], r["reconstruction"][order], os.path.join(out, f"{name}_reconstructions.png"),
                                   title=f"{name}: test digits (top) and their reconstructions from a 2-D code (bottom)")
        scatter = latent_plot(r["code"], y_test, os.path.join(out, f"{name}_latent.png"),
                              title=f"{name}: 2-D code of the {len(y_test)} test digits" + (" (mean)" if name == "vae" else ""))
        print(f"wrote {grid}\nwrote {scatter}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="training epochs per model (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "autoencoder"), help="directory for the PNGs")
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run (3 epochs, 300 training images)")
    args = parser.parse_args(argv)
    if args.quick:
        results = run(epochs=3, hidden=(32,), train_size=300, seed=args.seed)
    else:
        results = run(epochs=args.epochs, seed=args.seed)
    report(results, args.out)


if __name__ == "__main__":
    sys.exit(main())
