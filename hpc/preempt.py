"""Preemption as a normal path: notice the signal, stop at a safe point, requeue.

Slurm warns a job before its time limit or a preemption with a signal
(`--signal=USR1@120`, or USR2 through submitit). Doing the save inside the
signal handler is unsafe (it interrupts a training step, and only the rank
that got the signal would save), so the handler only sets a flag. The loop
asks `should_stop(...)` at step boundaries; every rank answers together (an
all-reduce of the flag), all save the same step, then `requeue()` puts the job
back in the queue:

- under submitit, through submitit's own checkpoint mechanism (the handler
  submitit had installed is called now, at a safe point: it pickles the
  job callable and runs `scontrol requeue`);
- under a plain sbatch script, with `scontrol requeue $SLURM_JOB_ID`;
- elsewhere (a laptop, mpiexec), the process exits with EXIT_REQUEUE (75) and
  the same command resumes from the checkpoint.

SIGTERM (scancel, end of the grace period) asks for a save too, but not a
requeue: a cancelled job should stay cancelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any, Callable

EXIT_REQUEUE = 75  # EX_TEMPFAIL: "try again later"
REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


class PreemptionWatch:
    """Install with `with PreemptionWatch() as watch:`; the old handlers come back on exit."""

    def __init__(self, *, requeue_signals: tuple[int, ...] = REQUEUE_SIGNALS,
                 stop_signals: tuple[int, ...] = (signal.SIGTERM,)) -> None:
        self.requeue_signals = requeue_signals
        self.stop_signals = stop_signals
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "PreemptionWatch":
        for signum in (*self.requeue_signals, *self.stop_signals):
            self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _note(self, signum: int, frame: Any) -> None:
        # Keep the strongest request: a requeue signal outranks a plain stop.
        if self.received is None or signum in self.requeue_signals:
            self.received = signum
        print(f"galaxy-hpc: received {signal.Signals(signum).name}; stopping at the next "
              "safe point", file=sys.stderr, flush=True)

    @property
    def wants_requeue(self) -> bool:
        return self.received in self.requeue_signals

    def should_stop(self, any_rank: Callable[[bool], bool] | None = None) -> bool:
        """True on every rank as soon as one rank received a signal.

        `any_rank(flag)` must return the logical OR of `flag` over ranks (an
        all-reduce); the training loop calls this every step, which costs one
        tiny collective.
        """
        local = self.received is not None
        return any_rank(local) if any_rank is not None else local

    def requeue(self, *, rank: int) -> int:
        """Put the job back in the queue (rank 0 acts). Returns the exit code to use."""
        if rank != 0:
            return EXIT_REQUEUE
        submitit_signal = signal.Signals[f"SIG{os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}"]
        submitit_handler = self._previous.get(submitit_signal)
        if os.environ.get("SUBMITIT_EXECUTOR") and callable(submitit_handler):
            # submitit's checkpoint_and_try_requeue: pickles the callable's
            # checkpoint() and requeues the job; it exits the process itself.
            submitit_handler(submitit_signal, None)
            return EXIT_REQUEUE
        job_id = os.environ.get("SLURM_JOB_ID")
        if job_id:
            print(f"galaxy-hpc: requeueing Slurm job {job_id}", file=sys.stderr, flush=True)
            subprocess.run(["scontrol", "requeue", job_id], check=False, timeout=60)
        else:
            print("galaxy-hpc: checkpoint saved; run the same command again to resume",
                  file=sys.stderr, flush=True)
        return EXIT_REQUEUE
