"""`--json`: one JSON document on stdout, everything else on stderr.

Scripts run `galaxy-hpc train ... --json | jq`, so stdout must hold the result
and nothing else. What else a command prints does not all come through our
`print` calls: DeepSpeed logs to the `sys.stdout` it found at import time,
C libraries and MPI write to file descriptor 1. So while a `--json` command
runs, descriptor 1 points at stderr and `sys.stdout` is `sys.stderr`; the
result alone goes to the real stdout, through `print_json`.

In a test that calls `main()` in-process under pytest's capture, `sys.stdout`
is a capture object, not descriptor 1: it receives the result, and the rest
goes to stderr as above.
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, TextIO

_result_stream: TextIO | None = None


@contextmanager
def json_mode() -> Iterator[None]:
    """Inside, descriptor 1 and `sys.stdout` go to stderr; `print_json` to the real stdout."""
    global _result_stream
    real = sys.stdout
    real.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        writes_to_fd1 = real.fileno() == 1
    except (AttributeError, OSError, io.UnsupportedOperation):
        writes_to_fd1 = False  # a capture object: it stays the result's stream
    _result_stream = os.fdopen(os.dup(saved), "w", encoding="utf-8") if writes_to_fd1 else real
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stdout = real
        stream, _result_stream = _result_stream, None
        if stream is not real:
            stream.close()
        os.dup2(saved, 1)
        os.close(saved)


def print_json(data: Any, *, indent: int | None = None) -> None:
    """The command's result as JSON: to the real stdout under `json_mode`, else stdout."""
    text = data if isinstance(data, str) else json.dumps(data, indent=indent)
    stream = _result_stream or sys.stdout
    stream.write(text.rstrip("\n") + "\n")
    stream.flush()
