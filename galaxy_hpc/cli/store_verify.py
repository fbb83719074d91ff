"""`galaxy-hpc store verify STORE [--limit N] [--json]`: every item re-read and re-hashed.

Runs on one process or under mpiexec/srun: rank r verifies shards r, r + world, ...
(shards cost about the same, so striding balances them without talking), then the ranks
gather their findings (a count and at most --limit records each) and rank 0 checks the
digests against the store checksum, prints, records the outcome in the store and, for a
renamed HDF5 store found intact, points the master's virtual dataset at its own folder.
Exit status 0 when intact, 1 (one line on stderr, from every rank) when anything is
damaged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def run_verify(args: argparse.Namespace) -> int:
    from hpc.comm import job_comm
    from hpc.store import open_store
    from hpc.store.verify import Damage, check_checksum, count_items, verify_shard

    if args.limit < 1:
        raise ValueError(f"--limit must be a positive number of lines, got {args.limit}")
    comm = job_comm()
    started = time.perf_counter()
    try:
        store = open_store(args.store, check_present=False)  # missing files: listed per shard
    except OSError as error:
        raise ValueError(f"{args.store}: cannot read store ({error.strerror or error})") from None
    from tqdm import tqdm

    mine: list[Damage] = []
    shards = range(comm.rank, store.num_shards, comm.size)
    show = comm.rank == 0 and sys.stderr.isatty()  # progress on rank 0's terminal only
    for shard in tqdm(shards, desc="verify (shards of rank 0)", unit="shard", disable=not show):
        mine.extend(verify_shard(store, shard))
    gathered = comm.allgather(
        (count_items(mine), len(mine), [d.to_dict() for d in mine[: args.limit]])
    )
    num_damaged = sum(count for count, _, _ in gathered)
    num_records = sum(records for _, records, _ in gathered)
    damage = sorted((Damage(**d) for *_, part in gathered for d in part), key=lambda d: d.start)
    verdict = None
    if comm.rank == 0:
        bad_sum = check_checksum(store)
        if bad_sum is not None:
            damage.append(bad_sum)
            num_records += 1
        summary = _summary(store, damage, num_damaged, num_records, bad_sum is None,
                           comm.size, time.perf_counter() - started, args.limit)
        _record(store, damage, num_damaged, summary)
        if args.json:
            from galaxy_hpc.cli.output import print_json

            print_json(json.dumps(summary, sort_keys=True))
        else:
            print(_text(summary))
        if damage:
            what = (f"{num_damaged:,} of {len(store):,} items" if num_damaged
                    else "its item digests do not match the store checksum")
            verdict = f"{store.path} is damaged: {what}"
    verdict = comm.bcast(verdict)
    if verdict:
        # Every rank knows the verdict: returned, not raised (a raised error ends a rank
        # at once, for errors that strike only some ranks; cli/main.py).
        where = "listed above" if comm.rank == 0 else "rank 0 lists them"
        print(f"galaxy-hpc store: error: {verdict}; {where}", file=sys.stderr)
        return 1
    return 0


def _summary(store, damage, num_damaged, num_records, checksum_ok, ranks, seconds,
             limit) -> dict:
    return {
        "path": str(store.path),
        "backend": store.backend,
        "count": len(store),
        "num_shards": store.num_shards,
        "checksum": store.checksum,
        "checksum_ok": checksum_ok,
        "ok": not damage,
        "num_damaged_items": num_damaged,
        "damaged": [d.to_dict() for d in damage[:limit]],
        "num_damage_records_left_out": max(0, num_records - min(limit, len(damage))),
        "ranks": ranks,
        "seconds": round(seconds, 3),
    }


def _record(store, damage, num_damaged, summary: dict) -> None:
    """The outcome into the store (and relinking), where the file system lets us: a
    read-only store is verified all the same, and says it was not recorded."""
    from hpc.store.verify import record_verification

    try:
        summary["recorded"] = record_verification(store, damage, num_damaged)
        summary["relinked"] = bool(not damage and store.relink())
    except OSError as error:
        summary["recorded"] = None
        summary["relinked"] = False
        print(f"galaxy-hpc store verify: could not record the outcome in {store.path} "
              f"({error.strerror or error})", file=sys.stderr)


def _text(summary: dict) -> str:
    lines = [f"store    {summary['path']} ({summary['backend']}, {summary['count']:,} items, "
             f"{summary['num_shards']:,} shards; {summary['ranks']} rank(s), "
             f"{summary['seconds']:.1f} s)"]
    if summary["ok"]:
        lines.append("verified every item matches its digest; digests match the checksum")
    else:
        lines.append(f"damaged  {summary['num_damaged_items']:,} of {summary['count']:,} items")
        lines += [f"  {_line(d)}" for d in summary["damaged"]]
        if summary["num_damage_records_left_out"]:
            lines.append(f"  ... {summary['num_damage_records_left_out']} more "
                         "(--limit shows more)")
    if summary.get("recorded"):
        lines.append(f"recorded {summary['recorded']['verified_at']} in the store "
                     "(store info shows it)")
    if summary.get("relinked"):
        lines.append("relinked the master's images to its renamed shard folder (plain h5py)")
    return "\n".join(lines)


def _line(record: dict) -> str:
    from hpc.store.verify import Damage

    return Damage(**record).line()

