"""`galaxy-hpc store info STORE [--json]`: what a store holds, for people and scripts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hpc.store import open_store

MAX_COLUMNS_SHOWN = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("store", help="inspect image stores (Zarr / HDF5)")
    actions = parser.add_subparsers(dest="store_command", metavar="SUBCOMMAND", required=True)
    info = actions.add_parser("info", help="count, shapes, columns, checksum and size of a store")
    info.add_argument(
        "store", metavar="STORE", help="path of a .zarr folder or an HDF5 master file"
    )
    info.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    assert args.store_command == "info", args.store_command
    try:
        info = open_store(args.store).info()
    except FileNotFoundError:
        raise
    except OSError as error:  # unreadable file, permissions: still one line naming the path
        raise ValueError(f"{args.store}: cannot read store ({error.strerror or error})") from None
    if args.json:
        from galaxy_hpc.cli.output import print_json

        print_json(json.dumps(info, sort_keys=True))
    else:
        print(format_info(info))
    return 0


def format_info(info: dict[str, Any]) -> str:
    shape = "x".join(map(str, info["image_shape"]))
    described = [f"{name}: {dtype}" for name, dtype in info["columns"].items()]
    if len(described) > MAX_COLUMNS_SHOWN:  # the full list is in --json
        rest = len(described) - MAX_COLUMNS_SHOWN
        described = described[:MAX_COLUMNS_SHOWN] + [f"... and {rest} more (--json lists all)"]
    columns = ", ".join(described) or "(none)"
    codec = info["compression"] + (
        f" level {info['compression_level']}" if info["compression_level"] is not None else ""
    )
    lines = [
        (
            "store",
            f"{info['path']} ({info['backend']}, "
            f"{human_bytes(info['size_on_disk_bytes'])} on disk)",
        ),
        ("items", f"{info['count']:,} images {shape} {info['image_dtype']}"),
        ("shards", f"{info['num_shards']:,} x {info['shard_size']:,} images, {codec}"),
        ("columns", columns),
        ("checksum", info["checksum"]),
        ("created", f"{info['created_at']}, finalized {info['finalized_at']}"),
    ]
    attrs = info["attrs"]
    lines.append(("attrs", "(none)" if not attrs else ""))
    text = [f"{key:<9} {value}".rstrip() for key, value in lines]
    text += [f"  {key}: {summarize(value)}" for key, value in attrs.items()]
    return "\n".join(text)


def summarize(value: Any, width: int = 70) -> str:
    if isinstance(value, list) and len(value) > 3:
        return f"[{len(value)} items] " + _clip(json.dumps(value[:3])[:-1] + ", ...]", width - 12)
    if isinstance(value, dict) and len(value) > 4:
        return f"{{{len(value)} keys: {', '.join(list(map(str, value))[:4])}, ...}}"
    return _clip(value if isinstance(value, str) else json.dumps(value), width)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
