"""The small problems whose Keras numbers the parity tests record: data and initial weights, NumPy only.

Shared by `record_keras.py` (which trains them in Keras) and the tests (which train them in jdl
from the same weights and compare with the recorded numbers).
"""

import numpy as np

CLASS_WEIGHT = {0: 3.0, 1: 0.5, 2: 1.0}
LEARNING_RATE = 0.1
EPOCHS = 3
BATCH_SIZE = 10  # divides the 30 training rows: one compiled step shape in jdl
GELU_POINTS = (-3.0, -1.5, -0.5, 0.0, 0.3, 1.0, 2.5)


def classification():
    """x (40, 4), labels (40,) in {0, 1, 2} (imbalanced), sample weights (40,), Dense 4→5 relu→3 weights."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = np.where(x[:, 0] + 0.5 * x[:, 1] > 0.6, 0, np.where(x[:, 2] > 0, 1, 2)).astype(np.int32)
    w = rng.uniform(0.2, 2.0, size=40).astype(np.float32)
    weights = {
        "kernel_1": rng.normal(scale=0.6, size=(4, 5)).astype(np.float32),
        "bias_1": rng.normal(scale=0.1, size=(5,)).astype(np.float32),
        "kernel_2": rng.normal(scale=0.6, size=(5, 3)).astype(np.float32),
        "bias_2": rng.normal(scale=0.1, size=(3,)).astype(np.float32),
    }
    return x, y, w, weights


def multi_label():
    """x (30, 4), multi-hot targets (30, 3), sample weights (30,), one Dense 4→3 sigmoid layer's weights."""
    rng = np.random.default_rng(29)
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0.3, x[:, 3] < -0.2], axis=1).astype(np.float32)
    w = rng.uniform(0.2, 2.0, size=30).astype(np.float32)
    weights = {"kernel": rng.normal(scale=0.8, size=(4, 3)).astype(np.float32),
               "bias": rng.normal(scale=0.2, size=(3,)).astype(np.float32)}
    return x, y, w, weights
