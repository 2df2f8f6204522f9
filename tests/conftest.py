import jax
import pytest


@pytest.fixture
def x64():
    """Run the test with 64-bit JAX types (float64 references), restoring the setting after."""
    with jax.enable_x64(True):
        yield
