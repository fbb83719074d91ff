"""`galaxy-hpc ingest ...` through the real CLI entry point, with only the ingest command
registered: the full parser imports every command's dependencies (torch, GalSim), which
costs several seconds per process and would dominate the multi-process tests."""

import sys

from galaxy_hpc.cli import main as cli

if __name__ == "__main__":
    cli.COMMANDS[:] = ["ingest_cmd"]
    sys.exit(cli.main(sys.argv[1:]))
