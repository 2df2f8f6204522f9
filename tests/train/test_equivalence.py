"""A fixed-seed fit of an MLP, a CNN and an LSTM gives the parameters it gave before the engine-core change.

The digests were recorded on the landed main before that change (commit c391a1f), on the machine
described by RECORDED_ON. On a machine like it the parameters must be bit-identical; elsewhere XLA
may vectorise differently, so the check falls back to the recorded sums and first entries (1e-5).
A change that alters numerics on purpose re-records these, saying why in its commit. The MLP's and the
LSTM's were re-recorded when jdl's programs began to compile with XLA:CPU's classic emitters
(jdl.train.compiler; sums within 2.4e-8 and 2.1e-7 relative), and again when the training chunks went
back to XLA's defaults with only the epoch's last, partial batch on the classic emitters
(compiler.chunk_options): the MLP's digest is then the classic-emitter one (e3c2e11e…; all-default
chunks give exactly the pre-change 64f28576…), the LSTM's sum moved 6e-8 relative, first entries
within 1.5e-8, second loss 0.24883872270584106 -> 0.24883869290351868. The CNN's were
re-recorded when the convolution's kernel gradient became matrix products (jdl.nn.conv.kernel_grad):
sums within 5e-8 relative, first entries within 1.5e-8, losses identical.

The fits run in a fresh interpreter with XLA's default compiler settings (tests.train.equivalence_fit),
not the faster-compiling ones the rest of the suite uses (see tests/compiler.py).
"""

import json
import platform
import subprocess
import sys
from pathlib import Path

import jaxlib
import numpy as np
import pytest

from tests.compiler import default_compiler_env
from tests.once import once

ROOT = Path(__file__).resolve().parents[2]

RECORDED_ON = {'machine': 'x86_64', 'cpu': 'Intel(R) Xeon(R) Processor', 'avx512f': True, 'jaxlib': '0.10.2'}
RECORDED = {
    "mlp": {
        "digest": "e3c2e11ee99ecdb51fbf4501196ba202427100732aa9f891aff3e7066e495fcd",
        "sum": 20.525111542057857,
        "abs_sum": 370.64450212185693,
        "first": [
            -0.051396239548921585,
            0.007581835146993399,
            -0.00861384253948927,
            0.2633683681488037,
            -0.03539596125483513,
            -0.03850211203098297
        ],
        "loss": [
            2.268075704574585,
            2.0271337032318115,
            1.7733885049819946
        ]
    },
    "cnn": {
        "digest": "2c18a2fc2105233a16a41a7f6f5a758fb9e0d1d3f6fcbb815895ff3c767a66df",
        "sum": -3.294295627172687,
        "abs_sum": 549.8758475104551,
        "first": [
            -0.00958133302628994,
            -0.1538902223110199,
            0.010147333145141602,
            -0.01700250245630741,
            0.036541976034641266,
            -0.0599609911441803,
            0.09711241722106934,
            -0.036838941276073456
        ],
        "loss": [
            2.212078809738159,
            1.5308022499084473
        ]
    },
    "lstm": {  # re-recorded for the recurrent fast_grad, then for compiler.chunk_options (see the docstring)
        "digest": "655867e2ed3443d46988095df7b3076cc3f2aa79e0a8bf7cbe53a03a08d3de34",
        "sum": 11.739479944382765,
        "abs_sum": 192.44822959108933,
        "first": [
            -0.0428161658346653,
            -0.11168736219406128,
            0.11847826838493347,
            0.1519789695739746,
            -0.18328456580638885
        ],
        "loss": [
            0.4890269637107849,
            0.24883869290351868
        ]
    }
}


def fingerprint():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    return {"machine": platform.machine(), "cpu": cpu, "avx512f": "avx512f" in flags, "jaxlib": jaxlib.__version__}


def run_fits(_: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "tests.train.equivalence_fit", *RECORDED], env=default_compiler_env(),
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """The three fits, in one fresh interpreter (one start-up and one import), once per session (tests.once)."""
    return once(tmp_path_factory, "equivalence", run_fits)[1]


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm"])
def test_fixed_seed_fit_gives_the_recorded_parameters(fits, name):
    got = fits[name]
    recorded = RECORDED[name]
    if fingerprint() == RECORDED_ON:
        assert got["digest"] == recorded["digest"]
        assert got["loss"] == recorded["loss"]
        return
    assert got["sum"] == pytest.approx(recorded["sum"], rel=1e-5, abs=1e-5)
    assert got["abs_sum"] == pytest.approx(recorded["abs_sum"], rel=1e-5)
    np.testing.assert_allclose(got["first"], recorded["first"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["loss"], recorded["loss"], rtol=1e-5)
