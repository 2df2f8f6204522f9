"""`jdl info` (versions and devices) and `jdl data pack` (a packed data set for Grain)."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib.metadata import version

from jdl.commands.errors import user_error


def run_info(args: argparse.Namespace) -> int:
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


def run_data_pack(args: argparse.Namespace) -> int:
    """`jdl data pack OUT (--idx IMAGES LABELS | --npz FILE | --dataset NAME)`: write a packed data set."""
    import numpy as np

    from jdl.data import packed

    chosen = [name for name in ("idx", "npz", "dataset") if getattr(args, name) is not None]
    if len(chosen) != 1:
        return user_error("data pack", ValueError(f"give exactly one of --idx, --npz and --dataset, got {len(chosen)}"))
    try:
        if args.dataset is not None:
            from jdl import config as config_lib
            from jdl.data import datasets

            options = {}
            for item in args.option:
                path, value = config_lib.parse_override(item)
                options[".".join(path)] = value
            loaded = datasets.load(args.dataset, **options)
            x, y = (loaded.x_train, loaded.y_train) if args.split == "train" else (loaded.x_test, loaded.y_test)
        else:
            x, y = packed.read_arrays(idx=args.idx, npz=args.npz, x_key=args.x_key, y_key=args.y_key)
        x = packed.prepared(np.asarray(x), flatten=args.flatten, scale=args.scale,
                            dtype=None if args.dtype is None else np.dtype(args.dtype))
        out = packed.write(args.out, x, np.asarray(y))
    except (ValueError, TypeError) as err:
        return user_error("data pack", err)
    manifest = packed.read_manifest(out)
    arrays = ", ".join(f"{k} {v['dtype']} {tuple(v['shape'])}" for k, v in manifest["arrays"].items())
    print(f"wrote {out}/ ({manifest['count']} examples: {arrays})")
    return 0
