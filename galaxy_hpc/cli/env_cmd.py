"""`galaxy-hpc env`: what this process would be in a distributed job, without starting it.

Run it under `srun` (or mpiexec, torchrun) to see every rank's view:
    srun -N2 -n4 galaxy-hpc env --json
"""

from __future__ import annotations

import argparse

from galaxy_hpc.cli.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "env", help="show the rank, world size and rendezvous this process resolves",
        description="Resolve rank, world size, local rank, master address/port and backend "
        "from Slurm, MPI, torchrun or submitit variables. Starts nothing.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="one JSON object")
    group.add_argument("--export", action="store_true",
                       help="shell `export` lines for the job's rendezvous (used by the slurm/*.sbatch scripts)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shlex

    from hpc.dist import job_rendezvous, resolve_env

    if args.export:
        addr, port = job_rendezvous()
        print(f"export MASTER_ADDR={shlex.quote(addr)}\nexport MASTER_PORT={port}")
        return 0
    env = resolve_env()
    if args.json:
        print_json(env.to_json())
        return 0
    print(f"rank {env.rank}/{env.world_size} (local {env.local_rank}/{env.local_world_size}, "
          f"node {env.node_rank}/{env.num_nodes}) on {env.hostname}")
    master = (f"{env.master_addr}:{env.master_port}" if env.master_addr
              else "agreed over MPI at start-up")
    print(f"source {env.source}, backend {env.backend}, master {master}, job {env.job_id or '-'}")
    return 0
