"""The `jdl` command: `jdl info` (versions and devices); more subcommands arrive with training."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import version


def _info(args: argparse.Namespace) -> int:
    """Print jdl, Python, JAX, Flax and Optax versions and the devices JAX sees."""
    import flax
    import jax
    import optax

    import jdl

    print(f"jdl      {jdl.__version__}")
    print(f"python   {platform.python_version()} ({sys.executable})")
    print(f"jax      {jax.__version__}")
    print(f"jaxlib   {version('jaxlib')}")
    print(f"flax     {flax.__version__}")
    print(f"optax    {optax.__version__}")
    print(f"backend  {jax.default_backend()}")
    devices = jax.devices()
    print(f"devices  {len(devices)}")
    for device in devices:
        print(f"  [{device.id}] {device.platform}: {device.device_kind}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `jdl` command, one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="jdl",
        description="jdl: a JAX functional deep-learning toolkit.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="subcommands")
    info = commands.add_parser("info", help="print jdl/JAX/Flax/Optax versions and the devices JAX sees")
    info.set_defaults(run=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jdl` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
