"""One-shot GPU check: the project's benchmarks on one GPU, one table. Run through
benchmarks/gpu_check.sh (see benchmarks/README.md); --dry-run runs the same parts on CPU
with tiny sizes, so that CI proves the script works between the rare GPU loans.

Each part is a benchmark script in a subprocess with its own time cap (and the whole run
within --budget seconds); a part that fails or runs out of time becomes a FAILED row with
the reason, and the others go on. The table is printed and written to --out as
gpu_check.md and gpu_check.json, each part's output beside them as PART.log.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

# name -> (time cap in s on a GPU, on CPU with --dry-run). The GPU caps add up to more
# than --budget on purpose: a part that finishes early leaves its time to the next ones.
CAPS = {"train-256": (90, 60), "train-512": (120, 60), "generate": (170, 90),
        "fid": (90, 90), "data": (60, 30)}


# --dry-run: one thread a process. The tiny shapes gain nothing from more, and on a shared
# CPU machine two spinning torch threads per process made a 10 s part take over 60 s.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_part(name: str, command: list[str], cap: float, out: Path,
             env: dict[str, str] | None = None) -> tuple[str, str]:
    """(stdout, "") on success, ("", reason) on failure; the output goes to out/NAME.log."""
    if cap < 5:
        return "", "skipped: the run's --budget was spent"
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=HERE.parent, start_new_session=True,
                               env={**os.environ, **(env or {})})
    try:
        stdout, stderr = process.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # mpiexec's ranks too
        stdout, stderr = process.communicate()
        reason = f"timed out after {cap:.0f} s"
    else:
        reason = "" if process.returncode == 0 else _last_error(stderr, process.returncode)
    seconds = time.perf_counter() - start
    (out / f"{name}.log").write_text(f"$ {' '.join(command)}\n# {seconds:.1f} s, "
                                     f"{reason or 'ok'}\n{stdout}\n--- stderr ---\n{stderr}")
    return ("", reason) if reason else (stdout, "")


def _last_error(stderr: str, code: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b", line)]
    text = (errors or lines or [f"exit status {code}"])[-1]
    return f"exit {code}: {text[:200]}"


def row(part, ours=None, baseline=None, baseline_name="", mfu=None, target="", met=None,
        note="", failed=""):
    return {"part": part, "ours": ours, "baseline": baseline, "baseline_name": baseline_name,
            "ratio": ours / baseline if ours and baseline else None, "mfu": mfu,
            "target": target, "met": met, "note": note, "failed": failed}


def train_rows(px: int, dry: bool, cap: float, out: Path) -> list[dict]:
    shape, batch, steps = ("tiny", 2, 1) if dry else ("sd15", 16 if px <= 256 else 8, 10)
    size = {256: 32, 512: 64}[px] if dry else px
    label = f"bench_train {shape} {size} px (batch {batch})"
    stdout, reason = run_part(f"train-{px}", [PY, str(HERE / "bench_train.py"), "--shape", shape,
                                              "--resolution", str(size), "--batch", str(batch),
                                              "--steps", str(steps)], cap, out,
                              ONE_THREAD if dry else None)
    target = "MFU >= 45% (H100/H200)" if px == 512 else "ratio >= 1.0x"
    if reason:
        return [row(label, target=target, failed=reason)]
    match = re.search(r"^\s*\d+\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+(\S+)\s+(\S+)\s+(.*)$", stdout,
                      re.MULTILINE)
    if not match:
        return [row(label, target=target, failed="no figures in bench_train's output")]
    ref, ours, mfu = float(match[1]), float(match[2]), match[4]
    mfu = float(mfu.rstrip("%")) / 100 if mfu.endswith("%") else None
    met = None if dry else (mfu is not None and mfu >= 0.45 if px == 512 else ours >= ref)
    return [row(label, ours, ref, "diffusers reference step, fp32", mfu, target, met,
                match[5].strip())]


def generate_rows(dry: bool, cap: float, out: Path) -> list[dict]:
    args = (["--shape", "tiny", "--size", "32", "--steps", "2", "--num", "4", "--batch", "2"]
            if dry else ["--shape", "sd15", "--size", "256", "--steps", "25", "--num", "32",
                         "--batch", "16"])
    label = f"bench_generate {args[1]} {args[3]} px, {args[5]} steps"
    stdout, reason = run_part("generate", [PY, str(HERE / "bench_generate.py"), *args,
                                           "--repeats", "1", "--ranks", "--json"], cap, out)
    targets = ("-", "ratio >= 1.5x, MFU >= 50%")
    if reason:
        return [row(f"{label}, 1 prompt/call", target=targets[0], failed=reason),
                row(f"{label}, batched", target=targets[1], failed=reason)]
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        fail = "no JSON in bench_generate's output"
        return [row(f"{label}, 1 prompt/call", target=targets[0], failed=fail),
                row(f"{label}, batched", target=targets[1], failed=fail)]
    ours, mfu, precision = report["galaxy_hpc_img_per_s"], report["mfu"], \
        report["galaxy_hpc_precision"]
    batched = report.get("reference_batched_img_per_s")
    note = f"ours {precision}, {report['gflop_per_image']:.1f} GFLOP/image"
    met = None if dry else (batched is not None and ours / batched >= 1.5
                            and mfu is not None and mfu >= 0.5)
    return [row(f"{label}, 1 prompt/call", ours, report["reference_img_per_s"],
                "diffusers pipeline, 1 prompt/call, fp32", mfu, targets[0], None, note),
            row(f"{label}, batched", ours, batched,
                f"diffusers pipeline, {report['batch']} prompts/call, {precision}", mfu,
                targets[1], met, note,
                "" if batched else "bench_generate has no batched baseline")]


def fid_rows(dry: bool, cap: float, out: Path, weights: str | None) -> list[dict]:
    size, num, device = (32, 8, "cpu") if dry else (299, 1000, "cuda")
    label = f"bench_fid inception-v3-compat {size} px -> 299, {2 * num} images"
    command = [PY, str(HERE / "bench_fid.py"), "--extractor", "inception-v3-compat",
               "--size", str(size), "--num-images", str(num), "--repeats", "1",
               "--throughput-only", "--device", device, "--out", str(out / "fid.json")]
    stdout, reason = run_part("fid", command + (["--weights", weights] if weights else []),
                              cap, out)
    target = "ratio >= 1.5x"
    if reason:
        return [row(label, target=target, failed=reason)]
    rates = json.loads((out / "fid.json").read_text())["features_per_second"]
    ours, base = rates["ours_1_rank"], rates["torch_fidelity"]
    return [row(label, ours, base, "torch-fidelity calculate_metrics, 1 process", None, target,
                None if dry else ours / base >= 1.5,
                f"{'given' if weights else 'random'} weights, {device}, 1 rank")]


def data_rows(dry: bool, cap: float, out: Path) -> list[dict]:
    """bench_data is called as it is: its nvJPEG option, when it has one, is found in --help."""
    label = "bench_data nvJPEG decode"
    help_text, reason = run_part("data-help", [PY, str(HERE / "bench_data.py"), "--help"], 30, out)
    if reason:
        return [row(label, failed=reason)]
    flags = re.findall(r"(--[\w-]*nvjpeg[\w-]*)", help_text, re.IGNORECASE)
    if not flags:
        return [row(label, note="no nvJPEG path yet (bench_data.py has no nvJPEG option)")]
    size, num = (32, 64) if dry else (256, 4000)
    stdout, reason = run_part("data", [PY, str(HERE / "bench_data.py"), "--num-images", str(num),
                                       "--size", str(size), "--rounds", "1", flags[0]], cap, out)
    if reason:
        return [row(label, failed=reason)]
    lines = [line.strip() for line in stdout.splitlines() if re.search("nvjpeg", line, re.I)]
    numbers = [re.search(r"([\d,]+(?:\.\d+)?)\s*(?:images/s|img/s)?", line) for line in lines]
    figures = [float(m[1].replace(",", "")) for m in numbers if m and m[1].strip(",")]
    return [row(label, figures[0] if figures else None, note="; ".join(lines)[:300] or
                "bench_data printed no nvJPEG line",
                failed="" if figures else "no nvJPEG figure in bench_data's output")]


# What the parts import or launch; a lent GPU machine's image may lack some (named in the
# table's heading, so that a FAILED row's cause is plain at once).
NEEDED_MODULES = ("diffusers", "transformers", "deepspeed", "torch_fidelity", "zarr", "mpi4py",
                  "galaxy_hpc", "hpc")
NEEDED_PROGRAMS = ("mpiexec", "galaxy-hpc")


def missing() -> list[str]:
    import importlib.util
    import shutil

    names = [m for m in NEEDED_MODULES if importlib.util.find_spec(m) is None]
    bin_dir = Path(sys.executable).parent
    return names + [p for p in NEEDED_PROGRAMS if not (bin_dir / p).exists()
                    and shutil.which(p) is None]


def environment(dry: bool) -> dict:
    import importlib.metadata

    import torch

    on_gpu = torch.cuda.is_available()
    if not on_gpu and not dry:
        raise SystemExit("gpu_check: torch sees no GPU; use --dry-run to check the script on CPU")
    try:
        diffusers = importlib.metadata.version("diffusers")
    except importlib.metadata.PackageNotFoundError:
        diffusers = "-"
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "device": torch.cuda.get_device_name() if on_gpu else f"CPU ({os.cpu_count()} cores)",
            "torch": torch.__version__, "cuda": torch.version.cuda or "-",
            "cudnn": str(torch.backends.cudnn.version()) if on_gpu else "-",
            "diffusers": diffusers, "dry_run": dry, "missing": missing(),
            "load_average": round(os.getloadavg()[0], 2)}


def _fmt(value, percent=False) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if percent else f"{value:,.2f}"


def table(env: dict, rows: list[dict], seconds: float) -> str:
    heading = (f"# gpu_check {env['date']}: {env['device']}; torch {env['torch']}, CUDA "
               f"{env['cuda']}, cuDNN {env['cudnn']}, diffusers {env['diffusers']}; load "
               f"{env['load_average']}; {seconds:.0f} s")
    if env["missing"]:
        heading += f"; MISSING: {', '.join(env['missing'])}"
    if env["dry_run"]:
        heading += "; DRY RUN (CPU, tiny sizes: no figure means anything)"
    lines = [heading,
             "",
             "| part | ours img/s | baseline img/s | baseline | ratio | MFU | target | met | "
             "note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        note = f"FAILED: {r['failed']}" if r["failed"] else r["note"]
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        lines.append(f"| {r['part']} | {_fmt(r['ours'])} | {_fmt(r['baseline'])} | "
                     f"{r['baseline_name'] or '-'} | {ratio} | {_fmt(r['mfu'], True)} | "
                     f"{r['target'] or '-'} | {met} | {note.replace('|', '/')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes (CI)")
    parser.add_argument("--out", type=Path, help="folder for gpu_check.md/.json and the logs "
                        "(default: a new temporary folder)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all parts together (default 450 on GPU, 170 dry)")
    parser.add_argument("--cap-scale", type=float, default=1.0,
                        help="multiply every part's time cap and the default budget: the dry "
                        "run's caps are set for an idle 2-core machine, and a loaded one (other "
                        "jobs beside CI) takes several times as long for the same parts")
    parser.add_argument("--fid-weights", help="torch-fidelity's Inception .pth (default: random)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    env = environment(args.dry_run)
    if not args.cap_scale > 0:
        parser.error(f"--cap-scale must be > 0, got {args.cap_scale}")
    budget = args.budget or (170 if args.dry_run else 450) * args.cap_scale

    def cap(name: str) -> float:
        left = budget - (time.perf_counter() - start)
        return min(CAPS[name][1 if args.dry_run else 0] * args.cap_scale, left)

    rows: list[dict] = []
    for name, make in (("train-256", lambda c: train_rows(256, args.dry_run, c, out)),
                       ("train-512", lambda c: train_rows(512, args.dry_run, c, out)),
                       ("generate", lambda c: generate_rows(args.dry_run, c, out)),
                       ("fid", lambda c: fid_rows(args.dry_run, c, out, args.fid_weights)),
                       ("data", lambda c: data_rows(args.dry_run, c, out))):
        try:
            rows += make(cap(name))
        except Exception as error:  # a part's parser must not end the run
            rows.append(row(name, failed=f"{type(error).__name__}: {error}"[:200]))
        print(f"gpu_check: {name} done at {time.perf_counter() - start:.0f} s", file=sys.stderr,
              flush=True)
    seconds = time.perf_counter() - start
    text = table(env, rows, seconds)
    (out / "gpu_check.md").write_text(text + "\n")
    (out / "gpu_check.json").write_text(json.dumps({"environment": env, "seconds": seconds,
                                                    "rows": rows}, indent=1))
    print(text)
    print(f"\n(written to {out}/gpu_check.md, .json and one .log per part)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
