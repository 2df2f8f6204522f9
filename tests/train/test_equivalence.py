"""A fixed-seed fit of an MLP, a CNN and an LSTM gives the parameters it gave before the engine-core change.

The digests were recorded on the landed main before that change (commit c391a1f), on the machines
described in DIGESTS. On a machine like one of them the parameters must be bit-identical; elsewhere XLA
may vectorise differently, so the check falls back to the recorded sums and first entries (1e-5).
A change that alters numerics on purpose re-records these, saying why in its commit. The MLP's and the
LSTM's were re-recorded when jdl's programs began to compile with XLA:CPU's classic emitters
(jdl.train.compiler; sums within 2.4e-8 and 2.1e-7 relative), and again when the training chunks went
back to XLA's defaults with only the epoch's last, partial batch on the classic emitters
(compiler.chunk_options): the MLP's digest is then the classic-emitter one (e3c2e11e…; all-default
chunks give exactly the pre-change 64f28576…), the LSTM's sum moved 6e-8 relative, first entries
within 1.5e-8, second loss 0.24883872270584106 -> 0.24883869290351868. The CNN's were
re-recorded when the convolution's kernel gradient became matrix products (jdl.nn.conv.kernel_grad):
sums within 5e-8 relative, first entries within 1.5e-8, losses identical. The CNN's were re-recorded again
when a first convolution with few taps × channels began to sum shifted views (jdl.nn.conv._forward_conv):
sum within 2.8e-7 relative, first entries within 1.2e-8, second loss 1.5308022499084473 -> 1.5308024883270264.
That was done on an AMD machine (DIGESTS' second entry), where the MLP's digest is the Intel one and the
CNN's and LSTM's are not; the Intel CNN digest of the change could not be recorded, so an Intel machine
checks the CNN by its sums and first entries.

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

# (machine, {model: (SHA-256 of the parameters, the epochs' losses)}), for a machine whose fingerprint has every key shown
DIGESTS = [
    ({'machine': 'x86_64', 'cpu': 'Intel(R) Xeon(R) Processor', 'avx512f': True, 'jaxlib': '0.10.2'}, {
      "mlp": ("e3c2e11ee99ecdb51fbf4501196ba202427100732aa9f891aff3e7066e495fcd",
               [2.268075704574585, 2.0271337032318115, 1.7733885049819946]),
      "lstm": ("655867e2ed3443d46988095df7b3076cc3f2aa79e0a8bf7cbe53a03a08d3de34",
               [0.4890269637107849, 0.24883869290351868]),
    }),
    ({'machine': 'x86_64', 'cpu': 'AMD EPYC', 'family_model': '25/17', 'avx512f': True, 'jaxlib': '0.10.2'}, {
      "mlp": ("e3c2e11ee99ecdb51fbf4501196ba202427100732aa9f891aff3e7066e495fcd",
               [2.268075704574585, 2.0271337032318115, 1.7733885049819946]),
      "cnn": ("d32f93c96b1f8bacce45c3e0c1dd9ff07c85203d86c587e396acc0e9556b351d",
               [2.212078809738159, 1.5308024883270264]),
      "lstm": ("14c469e98dd3892c249519ca7de9748e9048fe24e192de46973b5e4c4aad21d1",
               [0.4890269637107849, 0.24883872270584106]),
    }),
]
RECORDED = {
    "mlp": {
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
        "sum": -3.2942965529073263,
        "abs_sum": 549.8758471801848,
        "first": [
            -0.009581335820257664,
            -0.1538902223110199,
            0.01014732290059328,
            -0.01700250245630741,
            0.036541979759931564,
            -0.05996100232005119,
            0.09711240977048874,
            -0.036838945001363754
        ],
        "loss": [
            2.212078809738159,
            1.5308024883270264
        ]
    },
    "lstm": {  # re-recorded for the recurrent fast_grad, then for compiler.chunk_options (see the docstring)
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
    info = {}
    for line in open("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return {"machine": platform.machine(), "cpu": info.get("model name", ""),
            "family_model": f"{info.get('cpu family', '')}/{info.get('model', '')}",
            "avx512f": "avx512f" in info.get("flags", "").split(), "jaxlib": jaxlib.__version__}


def recorded_digests() -> dict[str, tuple[str, list[float]]]:
    """{model: (digest, losses)} recorded on a machine like this one (every key of its fingerprint equal), or {}."""
    machine = fingerprint()
    return next((d for on, d in DIGESTS if all(machine.get(k) == v for k, v in on.items())), {})


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
    digests = recorded_digests()
    if name in digests:
        digest, losses = digests[name]
        assert got["digest"] == digest
        assert got["loss"] == losses
        return
    assert got["sum"] == pytest.approx(recorded["sum"], rel=1e-5, abs=1e-5)
    assert got["abs_sum"] == pytest.approx(recorded["abs_sum"], rel=1e-5)
    np.testing.assert_allclose(got["first"], recorded["first"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["loss"], recorded["loss"], rtol=1e-5)
