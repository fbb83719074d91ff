"""The command blocks of README.md and docs/, and the checks the docs tests apply to them.

Convention (docs/development.md says it to writers): a ```bash block is a scenario step
that runs, in page order, in a directory that looks like a fresh clone. A ```bash block
preceded by `<!-- check: parse -->` cannot run here (sbatch, a named cluster, a download):
each galaxy-hpc command in it, and the one each sbatch script it submits runs (a script
of the checkout, or one an earlier `galaxy-hpc sbatch ... --out FILE` of the block wrote),
goes through the real argument parser, its config is loaded with its overrides, and every file
of the checkout it names must exist. Shell blocks in another spelling (sh, shell,
console) are refused, so that no command block escapes both checks.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARSE_MARK = "<!-- check: parse -->"
OTHER_SHELLS = {"sh", "shell", "console", "zsh", "shell-session"}
# Top-level folders of the checkout: a token starting with one names a file that must exist.
CHECKOUT_DIRS = ("configs/", "slurm/", "tools/", "tests/", "benchmarks/", "docs/")
# sbatch's short options that take a separate value (`-N 4`).
SBATCH_VALUED = {"-N", "-n", "-A", "-q", "-t", "-p", "-c", "-J", "-o", "-e", "-C", "-G", "-d"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    parse_only: bool

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, with whether a parse mark precedes it (only blank
    lines and other HTML comments may stand between the mark and the fence)."""
    found: list[Block] = []
    lines = page.read_text().splitlines()
    marked = False
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            language = stripped[3:].strip().lower()
            start = i
            i += 1
            body: list[str] = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            found.append(Block(page, start + 1, language, "\n".join(body) + "\n", marked))
            marked = False
        elif stripped == PARSE_MARK:
            marked = True
        elif stripped and not (stripped.startswith("<!--") and stripped.endswith("-->")):
            marked = False
        i += 1
    return found


def command_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.language == "bash"]


# --------------------------------------------------------------------------- a fresh clone


def tracked_top_level() -> list[str]:
    """The checkout's tracked top-level entries (what a fresh clone has)."""
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.split()
    return sorted({name.split("/", 1)[0] for name in out})


def fresh_clone(where: Path) -> Path:
    """A directory holding the checkout's tracked entries (as links) and nothing else: no
    runs/, no data/, no stores. Commands write there, never in the checkout."""
    where.mkdir(parents=True, exist_ok=True)
    for name in tracked_top_level():
        if (ROOT / name).exists():
            (where / name).symlink_to(ROOT / name)
    return where


# --------------------------------------------------------------------------- parse checks


class DocCommandError(AssertionError):
    """A documented command that would not run as written."""


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined; heredoc bodies and comments dropped."""
    out: list[str] = []
    pending = ""
    heredoc_end: str | None = None
    for raw in text.splitlines():
        if heredoc_end is not None:
            if raw.strip() == heredoc_end:
                heredoc_end = None
            continue
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        match = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if match:
            heredoc_end = match.group(1)
        if line.strip():
            out.append(line)
    return out


def commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, as tokens (`$(...)`, `;`, `&&`, `|` split)."""
    flat = line.replace("$(", " ; ").replace(")", " ; ")
    tokens = shlex.split(flat, comments=True)
    out: list[list[str]] = [[]]
    for token in tokens:
        if token in (";", "&&", "||", "|"):
            out.append([])
        else:
            out[-1].append(token)
    result = []
    for command in out:
        while command and re.match(r"^[A-Za-z_]\w*=", command[0]):  # VAR=value prefixes
            command = command[1:]
        if command:
            result.append(command)
    return result


def check_paths(tokens: list[str], where: str) -> None:
    """Every checkout file a command names exists (`configs/...`, also as `key=configs/...`)."""
    for token in tokens:
        value = token.split("=", 1)[1] if re.match(r"^[\w.-]+=", token) else token
        if value.startswith(CHECKOUT_DIRS) and not (ROOT / value).exists():
            raise DocCommandError(f"{where}: names {value}, which is not in the checkout")


def check_galaxy_hpc(argv: list[str], where: str) -> None:
    """Parse argv with galaxy-hpc's own parser; load its config with its overrides."""
    from galaxy_hpc.cli import main as cli

    parser = cli.build_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            args, rest = parser.parse_known_args(argv)
            cli._gather_overrides(parser, args, rest)
    except SystemExit as stop:
        if stop.code:
            message = errors.getvalue().strip().splitlines()[-1:] or ["usage error"]
            raise DocCommandError(f"{where}: galaxy-hpc {' '.join(argv)}: {message[0]}") from None
        return
    check_paths(argv, where)
    cluster = getattr(args, "cluster", None)
    if cluster and not cluster.endswith((".yaml", ".yml")):
        if not (ROOT / "configs" / "cluster" / f"{cluster}.yaml").is_file():
            raise DocCommandError(f"{where}: no cluster profile configs/cluster/{cluster}.yaml")
    config = next((getattr(args, slot) for slot in ("config", "file", "source")
                   if isinstance(getattr(args, slot, None), str)), None)
    if config and config.endswith((".yaml", ".yml")) and not config.startswith("$"):
        import galaxy_hpc.jobs  # noqa: F401  (registers every config kind)
        from hpc.config import load_config

        try:
            load_config(ROOT / config, list(getattr(args, "overrides", []) or []))
        except (ValueError, FileNotFoundError) as error:
            raise DocCommandError(f"{where}: {config}: {error}") from None


def sbatch_job(tokens: list[str], where: str, written: dict[str, list[str]] | None = None
               ) -> list[str]:
    """`sbatch [opts] slurm/X.sbatch ARGS` -> the galaxy-hpc argv the script runs.
    `written`: scripts an earlier `galaxy-hpc sbatch ... --out FILE` of the block wrote,
    with the galaxy-hpc arguments they run before their own."""
    i = 1
    while i < len(tokens) and tokens[i].startswith("-"):
        i += 2 if tokens[i] in SBATCH_VALUED else 1
    if i >= len(tokens):
        raise DocCommandError(f"{where}: sbatch without a script")
    script, script_args = tokens[i], tokens[i + 1:]
    if written and script in written:
        return [*written[script], *script_args]
    if not (ROOT / script).is_file():
        raise DocCommandError(f"{where}: no sbatch script {script} in the checkout")
    srun = re.search(r"^\s*ghpc_srun\s+(.*)$", (ROOT / script).read_text(), re.MULTILINE)
    if srun is None:
        raise DocCommandError(f"{where}: {script} runs no `ghpc_srun JOB`")
    argv: list[str] = []
    rest = list(script_args)
    for token in shlex.split(srun.group(1)):
        if token == "$@":
            argv += rest
            rest = []
        elif token.startswith("$"):  # a script variable taken from the first argument
            argv.append(rest.pop(0) if rest else "")
        else:
            argv.append(token)
    return argv


def written_job(args: list[str]) -> list[str]:
    """What a script `galaxy-hpc sbatch ARGS` writes runs: its JOB, CONFIG and KEY=VALUEs
    (the positionals; flags such as --cluster are the script's resources)."""
    job: list[str] = []
    i = 0
    while i < len(args):
        if args[i].startswith("-"):
            i += 1 if "=" in args[i] else 2
            continue
        job.append(args[i])
        i += 1
    return job


def check_make(tokens: list[str], where: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in tokens[1:]:
        if not target.startswith("-") and "=" not in target and \
                not re.search(rf"^{re.escape(target)}\s*:", makefile, re.MULTILINE):
            raise DocCommandError(f"{where}: `make {target}`: no such target in the Makefile")


def check_parse_block(block: Block) -> int:
    """Check every command of a parse-only block; returns how many galaxy-hpc commands."""
    checked = 0
    written: dict[str, list[str]] = {}  # script -> the job (and config, overrides) it runs
    for line in logical_lines(block.text):
        for tokens in commands(line):
            where = f"{block.where} `{line.strip()}`"
            check_paths(tokens, where)
            program = Path(tokens[0]).name
            if program == "galaxy-hpc":
                check_galaxy_hpc(tokens[1:], where)
                checked += 1
                if tokens[1:2] == ["sbatch"] and "--out" in tokens:
                    written[tokens[tokens.index("--out") + 1]] = written_job(tokens[2:])
            elif program == "sbatch":
                check_galaxy_hpc(sbatch_job(tokens, where, written), where)
                checked += 1
            elif program in ("srun", "mpiexec", "mpirun"):
                at = next((k for k, t in enumerate(tokens) if Path(t).name == "galaxy-hpc"), None)
                if at is not None:
                    check_galaxy_hpc(tokens[at + 1:], where)
                    checked += 1
            elif program == "make":
                check_make(tokens, where)
    return checked
