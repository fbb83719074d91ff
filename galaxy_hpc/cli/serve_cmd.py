"""`galaxy-hpc serve [CONFIG] [KEY=VALUE ...] [--store NAME=PATH] [--model PATH [--base BASE]]`:
a catalog browser and a generation API in one process (kind: serve).

Listens on 127.0.0.1 unless --host says otherwise (give a token then: --token-env VAR or
GALAXY_HPC_SERVE_TOKEN). On a cluster, slurm/serve.sbatch runs it on a GPU node and
prints the ssh tunnel to open from a laptop. The browser is at /, the API at /docs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket

from galaxy_hpc.cli.batch import add_batch_command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_batch_command(
        subparsers, "serve", run=run, required=False, distributed=False,
        config="serve YAML (kind: serve)",
        help="browse stores and generate from a model in a browser and an HTTP API",
        description=__doc__)
    parser.add_argument("--store", action="append", default=[], metavar="NAME=PATH",
                        help="a store to browse (repeatable): stores.NAME=PATH")
    parser.add_argument("--model", metavar="PATH", help="an exported model to draw from")
    parser.add_argument("--base", metavar="PATH",
                        help="the base pipeline: a LoRA's base, drawn beside the model")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8000)")
    parser.add_argument("--token-env", metavar="VAR",
                        help="read the access token from this environment variable")


def command_overrides(args: argparse.Namespace) -> list[str]:
    """The flags as config overrides (after the file's and the KEY=VALUEs)."""
    from galaxy_hpc.generate.ondemand import model_section_for

    out = []
    for text in args.store:
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--store {text!r}: write NAME=PATH")
        out.append(f"stores.{name}={json.dumps(path)}")
    if args.model:
        section = model_section_for(args.model, base=args.base)
        out += [f"model.kind={section.kind}", f"model.path={json.dumps(section.path)}"]
        if section.base:
            out.append(f"model.base={json.dumps(section.base)}")
    if args.base:
        base = model_section_for(args.base)
        out += [f"base_model.kind={base.kind}", f"base_model.path={json.dumps(base.path)}"]
    if args.host:
        out.append(f"host={args.host}")
    if args.port:
        out.append(f"port={args.port}")
    if args.token_env:
        if not os.environ.get(args.token_env):
            raise ValueError(f"--token-env {args.token_env}: that variable is not set")
        out.append(f"token={json.dumps(os.environ[args.token_env])}")
    return out


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from galaxy_hpc.cli.batch import load_batch_config
    from galaxy_hpc.serve.app import create_app
    from galaxy_hpc.serve.config import ServeConfig

    if args.base and not args.model:
        raise ValueError("--base goes with --model (the model drawn beside it)")
    args.overrides = [*args.overrides, *command_overrides(args)]
    cfg = load_batch_config(ServeConfig, args).with_environment()
    if cfg.host not in ("127.0.0.1", "localhost", "::1") and not cfg.token:
        print(f"galaxy-hpc serve: warning: listening on {cfg.host} without a token",
              flush=True)
    app = create_app(cfg)
    print(f"galaxy-hpc serve: http://{cfg.host}:{cfg.port}/ ({len(cfg.stores)} store(s), "
          f"{len(app.state.serve.queues)} model(s)); API at /docs", flush=True)
    print(f"  from a laptop: ssh -N -L {cfg.port}:{socket.gethostname()}:{cfg.port} LOGIN_NODE"
          f", then open http://localhost:{cfg.port}/", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
    return 0
