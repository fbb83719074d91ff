"""hpc.dist: reading the launch layout from Slurm, MPI, torchrun and submitit variables.

The environments below are the variables those launchers really set (taken
from srun, mpiexec and torchrun runs); the multi-process behaviour is covered
by tests/hpc/test_mpi_runs.py and tests/cluster/.
"""

from __future__ import annotations

import os

import pytest

from hpc.dist import (
    expand_nodelist,
    expand_tasks_per_node,
    job_rendezvous,
    master_port_for_job,
    resolve_env,
)


@pytest.mark.parametrize("nodelist, hosts", [
    ("nid[001-003,010]", ["nid001", "nid002", "nid003", "nid010"]),
    ("gpu-[1-2]-a,login1", ["gpu-1-a", "gpu-2-a", "login1"]),
    ("ghpc-n[1-2]", ["ghpc-n1", "ghpc-n2"]),
    ("nid200012", ["nid200012"]),
    ("a[01-02]b[3-4]", ["a01b3", "a01b4", "a02b3", "a02b4"]),
])
def test_expand_nodelist(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts


def test_expand_nodelist_rejects_garbage():
    with pytest.raises(ValueError, match="cannot parse Slurm node list"):
        expand_nodelist("nid[003-001")


@pytest.mark.parametrize("spec, counts", [
    ("4", [4]), ("2(x2)", [2, 2]), ("4(x3),2", [4, 4, 4, 2]), ("1,3(x2)", [1, 3, 3]),
])
def test_expand_tasks_per_node(spec, counts):
    assert expand_tasks_per_node(spec) == counts


def test_master_port_is_a_pure_function_of_the_job_id():
    ports = {master_port_for_job(job) for job in range(100000, 100500)}
    assert len(ports) == 500 and all(15000 <= p < 30000 for p in ports)
    assert master_port_for_job("123456") == master_port_for_job(123456)
    assert master_port_for_job("4242_7") == master_port_for_job("42427")  # array task ids


SRUN_TASK = {  # task 3 of `srun -N2 -n4` in job 8123
    "SLURM_JOB_ID": "8123", "SLURM_JOB_NODELIST": "nid[001-002]", "SLURM_STEP_NODELIST": "nid[001-002]",
    "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_NTASKS": "4",
    "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
}


def test_srun_task():
    env = resolve_env(SRUN_TASK, cuda_available=False)
    assert (env.source, env.rank, env.world_size, env.local_rank, env.local_world_size) == \
        ("slurm", 3, 4, 1, 2)
    assert (env.node_rank, env.num_nodes, env.master_addr) == (1, 2, "nid001")
    assert env.master_port == master_port_for_job("8123") and env.backend == "gloo"
    assert resolve_env(SRUN_TASK, cuda_available=True).backend == "nccl"


def test_batch_script_is_not_a_task():
    # The batch step has SLURM_PROCID=0 and SLURM_NTASKS=4 but is one process.
    batch = {k: v for k, v in SRUN_TASK.items() if not k.startswith("SLURM_STEP")}
    batch.update(SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0")
    env = resolve_env(batch, cuda_available=False)
    assert (env.source, env.world_size, env.rank) == ("single", 1, 0)


def test_job_rendezvous_matches_what_tasks_derive():
    assert job_rendezvous(SRUN_TASK) == ("nid001", resolve_env(SRUN_TASK, cuda_available=False).master_port)
    with pytest.raises(ValueError, match="not inside a Slurm job"):
        job_rendezvous({})


def test_explicit_master_wins():
    env = resolve_env({**SRUN_TASK, "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "40001"},
                      cuda_available=False)
    assert (env.master_addr, env.master_port, env.source) == ("10.0.0.5", 40001, "slurm")


MPICH_RANK = {"PMI_RANK": "1", "PMI_SIZE": "2", "PMI_FD": "9", "MPI_LOCALRANKID": "1",
              "MPI_LOCALNRANKS": "2", "PMI_HOSTNAME": "vm"}


def test_mpiexec_on_one_node():
    env = resolve_env(MPICH_RANK, cuda_available=False)
    assert (env.source, env.rank, env.world_size, env.local_rank, env.num_nodes) == ("mpi", 1, 2, 1, 1)
    assert env.master_addr == "127.0.0.1" and env.master_port is None  # agreed over MPI at init


def test_mpiexec_on_several_nodes_agrees_at_init():
    env = resolve_env({"PMI_RANK": "5", "PMI_SIZE": "8", "MPI_LOCALRANKID": "1",
                       "MPI_LOCALNRANKS": "4"}, cuda_available=False)
    assert (env.rank, env.world_size, env.node_rank, env.num_nodes) == (5, 8, 1, 2)
    assert env.master_addr is None


def test_open_mpi():
    env = resolve_env({"OMPI_COMM_WORLD_RANK": "6", "OMPI_COMM_WORLD_SIZE": "8",
                       "OMPI_COMM_WORLD_LOCAL_RANK": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "4",
                       "OMPI_COMM_WORLD_NODE_RANK": "1"}, cuda_available=False)
    assert (env.source, env.rank, env.local_rank, env.node_rank, env.num_nodes) == ("mpi", 6, 2, 1, 2)


def test_mpiexec_inside_an_allocation_counts_ranks_not_proxies():
    # mpiexec (hydra) starts one proxy per node with srun: Slurm sees 2 tasks, MPI 8 ranks.
    proxy_env = {**SRUN_TASK, "SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1",
                 "PMI_RANK": "5", "PMI_SIZE": "8", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "4"}
    env = resolve_env(proxy_env, cuda_available=False)
    assert (env.source, env.rank, env.world_size) == ("mpi", 5, 8)


def test_srun_with_pmi2_stays_slurm():
    # srun --mpi=pmi2 sets PMI_RANK/PMI_SIZE too; they agree with Slurm, which has the node list.
    env = resolve_env({**SRUN_TASK, "PMI_RANK": "3", "PMI_SIZE": "4"}, cuda_available=False)
    assert (env.source, env.master_addr) == ("slurm", "nid001")


def test_torchrun_wins_over_slurm():
    env = resolve_env({**SRUN_TASK, "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1",
                       "LOCAL_WORLD_SIZE": "4", "GROUP_RANK": "1", "MASTER_ADDR": "nid007",
                       "MASTER_PORT": "29400", "TORCHELASTIC_RUN_ID": "abc"}, cuda_available=False)
    assert (env.source, env.rank, env.world_size, env.node_rank, env.num_nodes) == \
        ("torchrun", 5, 8, 1, 2)
    assert (env.master_addr, env.master_port) == ("nid007", 29400)


def test_submitit_local_executor():
    env = resolve_env({"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_NTASKS": "2",
                       "SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_LOCALID": "1",
                       "SUBMITIT_LOCAL_JOB_ID": "4711"}, cuda_available=False)
    assert (env.source, env.rank, env.world_size, env.master_addr) == ("submitit-local", 1, 2, "127.0.0.1")
    assert env.master_port == master_port_for_job("4711")


def test_single_process():
    env = resolve_env({}, cuda_available=False)
    assert (env.source, env.rank, env.world_size, env.is_main, env.is_distributed) == \
        ("single", 0, 1, True, False)


def test_init_then_destroy_leaves_the_environment_as_it_was(monkeypatch):
    from hpc.dist import destroy_distributed, init_distributed

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MASTER_PORT", "29561")
    before = dict(os.environ)
    env = init_distributed(resolve_env(cuda_available=False))
    assert os.environ["RANK"] == "0" and os.environ["WORLD_SIZE"] == "1"  # DeepSpeed reads these
    assert env.master_port == 29561
    destroy_distributed()
    assert dict(os.environ) == before


def test_single_process_takes_a_free_port(monkeypatch):
    """Two single-process runs on one machine must not both bind the default port."""
    import socket

    from hpc.dist import destroy_distributed, init_distributed

    for name in ("RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as squatter:  # someone else holds 29500
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("", 29500))
            squatter.listen()
        except OSError:
            pass  # already taken by another process: the point stands
        env = init_distributed(resolve_env({}, cuda_available=False))
        try:
            assert env.master_port != 29500
        finally:
            destroy_distributed()
