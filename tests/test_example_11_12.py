"""Examples 11 (autoencoders) and 12 (multi-task, transfer) run with --quick and print consistent numbers."""

import math
import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow

NUMBER = r"(-?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))"


def value(out, label):
    match = re.search(rf"^{re.escape(label)}\s+{NUMBER}", out, re.MULTILINE)
    assert match, f"no line starting with {label!r} in:\n{out}"
    return float(match.group(1))


def row(out, label, columns):
    match = re.search(rf"^{re.escape(label)}" + rf"\s+{NUMBER}" * columns, out, re.MULTILINE)
    assert match, f"no row {label!r} with {columns} numbers in:\n{out}"
    return [float(v) for v in match.groups()]


def test_autoencoder_example_trains_reports_the_elbo_and_writes_readable_pngs(tmp_path):
    out = tmp_path
    text = run_example("11_autoencoder.py", "--quick", "--out", str(out))
    assert "300 training and 360 test images" in text
    for name in ("autoencoder", "vae"):
        first, last, cost, bce, mse, seconds = row(text, name, 6)
        assert last < first, f"{name} should learn in 3 epochs: {first} -> {last}"
        assert 0 < bce < 0.7 and 0 < mse < 0.25 and seconds > 0
        for kind in ("reconstructions", "latent"):
            png = out / f"{name}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert 0 < row(text, "pca (k=2)", 1)[0] < row(text, "mean image", 1)[0], "two principal axes beat the mean image"
    kl, elbo, cost64 = value(text, "vae test KL per image"), value(text, "vae test -ELBO per image"), value(text, "vae test cost x 64")
    assert kl >= 0 and math.isfinite(elbo)
    assert elbo == pytest.approx(cost64, rel=2e-3), "the Trainer's VAE cost is -ELBO / 64"


def test_multitask_and_transfer_example_reports_consistent_losses_and_a_frozen_trunk():
    text = run_example("12_multitask_and_transfer.py", "--quick")  # checkpoints go to a temporary directory
    assert value(text, "max |loss - (J1 + w*J2)| over epochs") < 1e-4
    rows = re.findall(r"^\s*(\d+)" + rf"\s+{NUMBER}" * 5 + r"\s*$", text, re.MULTILINE)
    assert [int(r[0]) for r in rows][:3] == [1, 2, 3]
    for epoch, loss, j1, j2, total, accuracy in rows:
        assert float(loss) == pytest.approx(float(total), abs=2e-4)
        assert 0 <= float(accuracy) <= 1
    assert 0.25 <= value(text, "test class accuracy") <= 1
    source = float(re.search(rf"source task digits 0-4: .* test accuracy {NUMBER}", text).group(1))
    assert source > 0.8, "the source trunk should learn digits 0-4"
    frozen = re.search(rf"^transplanted trunk, frozen\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+(yes|no)$", text, re.MULTILINE)
    tuned = re.search(rf"^transplanted trunk, fine-tuned\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+(yes|no)$", text, re.MULTILINE)
    scratch = re.search(rf"^from scratch\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+(yes|no)$", text, re.MULTILINE)
    assert frozen and tuned and scratch, text
    assert frozen.group(4) == "yes" and tuned.group(4) == "no" and scratch.group(4) == "no"
    for match in (frozen, tuned, scratch):
        assert 0 <= float(match.group(3)) <= 1
