"""DataFacts.once: a store statistic every rank needs is computed by the job's `shared`
hook (the loop's: rank 0, broadcast; tests/hpc/test_comm.py checks on_root over MPI and
gloo) and, without one, here. The two-rank GAN runs of test_train_gan.py measure the
survey noise through it."""

from __future__ import annotations

from galaxy_hpc.models.contract import DataFacts


def facts(shared=None) -> DataFacts:
    return DataFacts(store=None, stretch=None, caption_column=None, condition_columns=(),
                     shared=shared)


def test_once_runs_the_work_here_without_a_shared_hook():
    assert facts().once(lambda: 42) == 42


def test_once_hands_the_work_to_the_jobs_shared_hook():
    handed = []

    def rank_zero_then_broadcast(work):
        handed.append(work)
        return ("from rank 0", work())

    assert facts(rank_zero_then_broadcast).once(lambda: 7) == ("from rank 0", 7)
    assert len(handed) == 1
