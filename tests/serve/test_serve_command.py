"""`galaxy-hpc serve` as users start it: flags become config overrides, and the installed
command serves a store until it is stopped."""

from __future__ import annotations

import argparse
import subprocess
import time

import httpx
import pytest


def test_flags_become_the_config(serve_stores, serve_models, monkeypatch):
    from galaxy_hpc.cli.batch import load_batch_config
    from galaxy_hpc.cli.serve_cmd import command_overrides
    from galaxy_hpc.serve.config import ServeConfig

    monkeypatch.setenv("MY_TOKEN", "t0k")
    args = argparse.Namespace(store=[f"real={serve_stores['rgb']}"],
                              model=str(serve_models["lora"]),
                              base=str(serve_models["sd"]), host="0.0.0.0", port=8123,
                              token_env="MY_TOKEN", config=None, overrides=["limits.max_n=2"])
    args.overrides = [*args.overrides, *command_overrides(args)]
    cfg = load_batch_config(ServeConfig, args)
    assert cfg.stores == {"real": str(serve_stores["rgb"])} and cfg.port == 8123
    assert (cfg.model.kind, cfg.model.base) == ("sd_lora", str(serve_models["sd"]))
    assert cfg.base_model.kind == "sd" and cfg.token == "t0k" and cfg.limits.max_n == 2
    with pytest.raises(ValueError, match="NAME=PATH"):
        command_overrides(argparse.Namespace(store=["oops"], model=None, base=None, host=None,
                                             port=None, token_env=None))


def test_installed_command_serves_a_store(galaxy_hpc, serve_stores):
    from support.ports import free_port

    port = free_port()
    server = subprocess.Popen([galaxy_hpc, "serve", "--store", f"gen={serve_stores['flux']}",
                               "--port", str(port), "rate.per_client=100/minute"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "serve did not answer in 120 s"
                time.sleep(0.3)
        assert health.json()["stores"] == ["gen"] and health.json()["models"] == []
        # The first flux thumbnail imports torch and estimates the stretch: seconds.
        thumb = httpx.get(f"http://127.0.0.1:{port}/api/stores/gen/items/0/thumb.png",
                          timeout=120)
        assert thumb.headers["content-type"] == "image/png" and len(thumb.content) > 100
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/" in output and "ssh -N -L" in output
