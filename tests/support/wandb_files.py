"""What a W&B offline run wrote, read back from its `.wandb` file.

wandb 0.31 writes through its Go core and no longer ships a Python reader, so the
framing (LevelDB's log format: 32 KiB blocks, records cut into FULL/FIRST/MIDDLE/LAST
pieces behind a 7-byte header, after a 7-byte `:W&B` file header) is undone here and
each record is parsed with wandb's own protobuf class.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: str | Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a .wandb file"
    pos, pieces, records = HEADER, b"", []
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            pieces = chunk
        elif kind == MIDDLE:
            pieces += chunk
        elif kind == LAST:
            records.append(pieces + chunk)
        else:  # zero padding up to the end of the block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
    return [pb.Record.FromString(r) for r in records]


def finished_records(path: str | Path, timeout: float = 60.0) -> list:
    """The records of a run that has finished writing: wandb's core process writes the
    file on its own, and on a loaded machine `run.finish()` was seen to return while the
    file still held only its header (the records and the exit record came later). Waits
    for the exit record, up to `timeout` seconds; then returns what is there."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) \
                or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def history(path: str | Path) -> dict[int, dict]:
    """{step: {key: value}} of the run's logged rows (keys of nested values joined by '/')."""
    rows: dict[int, dict] = {}
    for record in finished_records(path):
        if record.WhichOneof("record_type") == "history":
            row = rows.setdefault(record.history.step.num, {})
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
    return rows


def run_config(path: str | Path) -> dict:
    """The run's config, as the run record holds it."""
    for record in finished_records(path):
        if record.WhichOneof("record_type") == "run":
            return {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.run.config.update}
    return {}
