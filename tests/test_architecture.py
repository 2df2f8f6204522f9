"""The layers of DESIGN.md hold: import-linter's contracts (pyproject.toml) pass and jdl uses no private JAX module."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"Contracts: (\d+) kept, 0 broken", done.stdout), done.stdout[-2000:]


def test_no_module_imports_private_jax():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "jdl").rglob("*.py") if "jax._src" in p.read_text()]
    assert offenders == []


def test_import_jdl_loads_neither_jax_nor_the_heavy_libraries():
    code = ("import sys, jdl; heavy = [m for m in ('jax', 'sklearn', 'scipy', 'orbax', 'matplotlib') if m in sys.modules]; "
            "print(heavy); jdl.Trainer; print([m for m in ('sklearn', 'scipy', 'orbax', 'matplotlib') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after_import, after_trainer = done.stdout.strip().splitlines()
    assert after_import == "[]" and after_trainer == "[]"
