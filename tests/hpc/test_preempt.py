"""hpc.preempt: signals become a flag that all ranks agree on; requeue outside Slurm."""

from __future__ import annotations

import os
import signal

from hpc.preempt import EXIT_REQUEUE, PreemptionWatch


def test_signal_sets_flag_and_handlers_are_restored(monkeypatch):
    before = signal.getsignal(signal.SIGUSR1)
    with PreemptionWatch() as watch:
        assert not watch.should_stop()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert watch.should_stop() and watch.wants_requeue
    assert signal.getsignal(signal.SIGUSR1) is before


def test_sigterm_stops_without_requeue_and_requeue_signal_outranks_it():
    with PreemptionWatch() as watch:
        os.kill(os.getpid(), signal.SIGTERM)
        assert watch.should_stop() and not watch.wants_requeue
        os.kill(os.getpid(), signal.SIGUSR2)
        assert watch.wants_requeue
        os.kill(os.getpid(), signal.SIGTERM)  # does not downgrade the request
        assert watch.wants_requeue


def test_any_rank_decides():
    with PreemptionWatch() as watch:
        # this rank saw nothing, another did: the all-reduce says stop
        assert watch.should_stop(lambda local: local or True)
        assert not watch.should_stop(lambda local: local)


def test_requeue_outside_slurm_asks_to_rerun(monkeypatch, capsys):
    for name in ("SLURM_JOB_ID", "SUBMITIT_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    with PreemptionWatch() as watch:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert watch.requeue(rank=0) == EXIT_REQUEUE == 75
        assert watch.requeue(rank=1) == EXIT_REQUEUE
    assert "run the same command again" in capsys.readouterr().err
