"""What an sbatch script of `galaxy-hpc serve` adds to the shared runtime: the port, and
the lines that tell a user how to reach a server listening on a compute node's 127.0.0.1.

One source for both scripts that run it: the shipped slurm/serve.sbatch
(tools/make_sbatch.py) and `galaxy-hpc sbatch serve --cluster NAME` for a site's own
profile. A server is one process on one node: those scripts ask for one task on one
node (and one GPU where the profile has GPUs), whatever the profile says for training.
"""

from __future__ import annotations

# Shell lines run before `srun galaxy-hpc serve "$@"`.
PROLOGUE = (
    'port="${GHPC_SERVE_PORT:-$((8000 + SLURM_JOB_ID % 1000))}"',
    'node="$(hostname)"',
    'login="${SLURM_SUBMIT_HOST:-LOGIN_NODE}"',
    'user="${USER:-$(id -un)}"  # batch environments need not set USER',
    'echo "galaxy-hpc serve: on ${node}:${port} (127.0.0.1 there)"',
    'echo "  from a laptop: ssh -N -L ${port}:localhost:${port} -J ${user}@${login} '
    '${user}@${node}"',
    'echo "  then open http://localhost:${port}/  (API: http://localhost:${port}/docs)"',
    'echo "  Jupyter (jupyter-server-proxy): open <hub>/user/${user}/proxy/${port}/"',
    'set -- "$@" "port=${port}"',
)

# How the port is chosen, for the scripts' usage text.
PORT_RULE = ("The port: $GHPC_SERVE_PORT, else 8000 + the job id modulo 1000 (two users' "
             "servers on one node seldom collide). It runs until the time limit or scancel.")


def profile_overrides(gpus_per_node: int) -> list[str]:
    """A profile's resources cut to one server: one node, one task, at most one GPU."""
    return ["nodes=1", "tasks_per_node=1", f"gpus_per_node={min(int(gpus_per_node), 1)}"]
