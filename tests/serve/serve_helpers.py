"""Helpers the serve tests import (a module of its own: every test folder has a
conftest.py, and `from conftest import ...` finds whichever one pytest imported last)."""

from __future__ import annotations

NUM_RGB = 30  # items of the RGB store (conftest's serve_stores)


def serve_config(serve_stores, **fields):
    """A ServeConfig over the test stores on CPU, a fast sampler, and `fields` on top."""
    from galaxy_hpc.serve.config import ServeConfig
    from hpc.config import from_dict

    data = {"stores": {k: str(v) for k, v in serve_stores.items()},
            "sampler": {"name": "ddim", "steps": 2, "guidance_scale": 2.0},
            "runtime": {"device": "cpu", "cpu_threads": 1}, **fields}
    return from_dict(ServeConfig, data)


class LiveServer:
    """An app served by uvicorn on a free port in a thread of this process."""

    def __init__(self, app) -> None:
        import threading

        import uvicorn

        from support.ports import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
