"""`galaxy-hpc demo`: the whole pipeline on a laptop, with embedded defaults.

Each step is a function of the demo context and returns one line for the
user; steps run in order and stop at the first failure. The pipeline grows
here as capabilities land (synthetic galaxies -> store -> training ->
catalog -> evaluation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class DemoContext:
    out_dir: Path
    num_tasks: int = 2
    results: dict[str, object] = field(default_factory=dict)


def step_selftest(ctx: DemoContext) -> str:
    """Start the local executor with several tasks and run the distributed self-test."""
    from galaxy_hpc.jobs import JobCall
    from hpc.launch import ClusterProfile, submit, wait
    from hpc.selftest import SelfTestConfig

    profile = ClusterProfile(name="local", executor="local", tasks_per_node=ctx.num_tasks,
                             time_min=10, log_dir=str(ctx.out_dir / "logs"))
    submitted = submit(JobCall("selftest", SelfTestConfig()), profile=profile,
                       job_name="ghpc-demo-selftest")
    result = wait(submitted, poll_s=0.5)[0]
    ctx.results["selftest"] = result
    if not result.ok:
        raise RuntimeError(f"distributed self-test failed:\n{result.summary()}\n"
                           f"logs: {submitted.stdout.parent}")
    return (f"local executor, {result.world_size} tasks, {result.backend}: all_reduce sum "
            f"{result.torch_sum:g} (expected {result.torch_expected:g}); logs in "
            f"{submitted.stdout.parent}")


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("distributed self-test", step_selftest),
]


def run_demo(out_dir: Path, num_tasks: int = 2, echo: Callable[[str], None] = print) -> DemoContext:
    ctx = DemoContext(out_dir=out_dir, num_tasks=num_tasks)
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, (title, step) in enumerate(STEPS, start=1):
        echo(f"[{index}/{len(STEPS)}] {title} ...")
        start = time.perf_counter()
        line = step(ctx)
        echo(f"      {line} ({time.perf_counter() - start:.1f} s)")
    echo(f"demo finished: outputs in {out_dir}")
    return ctx
