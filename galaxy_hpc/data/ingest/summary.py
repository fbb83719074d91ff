"""What an ingest reports: counts, where things went, checksum, time and rate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EXIT_OK = 0
EXIT_REJECTS = 3  # galaxy_hpc.cli.main.EXIT_REJECTS; kept here so jobs need not import the CLI


@dataclass
class IngestSummary:
    store: str
    rejects_file: str | None  # None: nothing was rejected (and no file written)
    kind: str
    format: str
    image_shape: list[int]
    image_dtype: str
    num_inputs: int  # records considered: ingested + rejected
    num_ingested: int
    num_rejected: int
    rejects_by_reason: dict[str, int]
    checksum: str
    num_ranks: int
    seconds: float
    blocks_total: int = 0
    blocks_resumed: int = 0  # blocks found complete in staging when this run started
    already_complete: bool = False  # the store was finished by an earlier run
    notes: dict[str, Any] = field(default_factory=dict)
    notes_file: str | None = None  # records kept with a note (non-finite pixels)
    num_noted: int = 0

    @property
    def ok(self) -> bool:
        """The batch finished (rejects or not); `submit --wait` reads this."""
        return True

    @property
    def exit_code(self) -> int:
        return EXIT_REJECTS if self.num_rejected else EXIT_OK

    @property
    def images_per_s(self) -> float:
        return self.num_inputs / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images_per_s"] = round(self.images_per_s, 1)
        data["exit_code"] = self.exit_code
        return data

    def summary(self) -> str:
        shape = "x".join(map(str, self.image_shape))
        if self.already_complete:
            head = (f"{self.store} was already complete: {self.num_ingested:,} images "
                    f"({shape} {self.image_dtype})")
        else:
            resumed = (f", resumed {self.blocks_resumed} of {self.blocks_total} blocks"
                       if self.blocks_resumed else "")
            head = (f"ingested {self.num_ingested:,} of {self.num_inputs:,} images ({self.kind}, "
                    f"{shape} {self.image_dtype}) into {self.store} in {self.seconds:.1f} s "
                    f"({self.images_per_s:,.0f} images/s, {self.num_ranks} rank(s){resumed})")
        lines = [head]
        if self.num_rejected:
            reasons = ", ".join(f"{k} {v}" for k, v in self.rejects_by_reason.items())
            lines.append(f"  rejected {self.num_rejected:,} ({reasons}): see {self.rejects_file}")
        if self.num_noted:
            mode = (self.notes.get("nonfinite") or {}).get("mode", "keep")
            kept = "set to 0" if mode == "zero" else "kept as they are"
            lines.append(f"  {self.num_noted:,} image(s) with NaN or infinite pixels ({kept}; "
                         f"counted in column nonfinite_pixels): see {self.notes_file}")
        missing = self.notes.get("missing_header_values")
        if missing:
            lines.append("  missing header values: "
                         + ", ".join(f"{k} {v}" for k, v in missing.items()))
        dropped = self.notes.get("table_rows_dropped")
        if dropped is not None:
            lines.append(f"  property table: {dropped:,} duplicate-id row(s) dropped "
                         f"({self.notes.get('one_row_per_id')})")
        lines.append(f"  checksum {self.checksum}")
        return "\n".join(lines)
