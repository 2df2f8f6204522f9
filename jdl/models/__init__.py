"""Ready-made models built from jdl.nn (Flax Linen modules), and `get` by name."""

from jdl import _checks
from jdl.models.mlp import MLP

_TABLE = {"mlp": MLP}


def names() -> list[str]:
    """The model names `get` (and run configs) accept."""
    return sorted(_TABLE)


def get(name: str) -> type:
    """The model class registered under `name` (e.g. "mlp" -> MLP)."""
    return _checks.lookup("model", name, _TABLE)


__all__ = ["MLP", "get", "names"]
