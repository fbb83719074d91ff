"""Each object's condition: which source row it uses, and what the model gets from it.

Built identically on every rank from the config and the files (no communication), and
lazily per batch: a rank works out only the objects of its own shards. Object i's row is
i // per_row (selection each), or drawn from the object's own uniform
(seeds.condition_uniforms) over the rows' weights (selection sample), so conditions,
like images, depend only on (catalog seed, i).

Text generators get captions: the caption column, one fixed prompt, or captions made
from the rows' 37 GZ2 vote fractions by the GalaxySD-style captioner. Vector generators
get the named numeric columns (by default the model's own condition columns); a GZ2 vote
table in Kaggle or GZ2-catalog naming is read through galaxy_hpc.data.vote_table when the
model wants the 37 fraction columns under their store names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from galaxy_hpc.data.gz2 import ANSWERS, column_name, parse_column
from galaxy_hpc.data.main_class import CLASS_COLUMNS
from galaxy_hpc.generate.conditions.classes import Oversampling, oversampling, row_classes
from galaxy_hpc.generate.conditions.rows import Rows
from galaxy_hpc.models.contract import ConditionBatch
from galaxy_hpc.generate.seeds import condition_uniforms

GZ2_FRACTIONS = [column_name(answer) for answer in ANSWERS]


def _distinct_in_order(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(vocabulary in order of first appearance, index of each value in it)."""
    position: dict[str, int] = {}
    ids = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        ids[row] = position.setdefault(value, len(position))
    return list(position), ids


class ConditionSource:
    def __init__(self, cfg: Any, generator: Any, rows: Rows) -> None:
        section = cfg.conditions
        self.section, self.rows, self.seed = section, rows, cfg.seed
        self.kind = generator.condition_kind
        self.selection = section.resolved_selection
        self.ids = rows.ids(section.id_column)
        self.captions: np.ndarray | None = None
        self.vectors: np.ndarray | None = None
        self.vector_names: list[str] = []
        if self.kind == "text":
            self.captions = self._captions()
            self.vocabulary, self.caption_ids = _distinct_in_order(self.captions)
        elif self.kind == "vector":
            self.vector_names, self.vectors = self._vectors(generator)
        else:
            raise ValueError(f"generator condition_kind {self.kind!r}: expected text or vector")
        if section.img2img and not getattr(generator, "supports_init_images", False):
            raise ValueError(f"conditions.img2img: model kind {cfg.model.kind!r} cannot start "
                             "from real images (img2img works with Stable Diffusion models)")
        self.carried = self._carried(section.carry_columns)
        self.classes = self._class_labels()
        self.oversampled: Oversampling | None = None
        if section.oversample > 1:
            self.oversampled = oversampling(self._classes(), factor=section.oversample,
                                            rare_fraction=section.rare_fraction,
                                            where=str(rows.path))
        self.num_objects = self._num_objects(cfg.num_objects)
        if self.selection == "sample":
            weights = self.oversampled.weights if self.oversampled else np.ones(rows.num_rows)
            self._cdf = np.cumsum(weights) / weights.sum()

    # -- what the rows give -------------------------------------------------------------
    def _gz2_fractions(self) -> np.ndarray | None:
        """(rows, 37) GZ2 per-question fractions, if the source has them."""
        rows = self.rows
        if all(rows.has(name) for name in GZ2_FRACTIONS):
            return np.stack([rows.numbers(name) for name in GZ2_FRACTIONS], axis=1)
        if rows.kind == "table":
            from galaxy_hpc.data.vote_table import read_vote_table

            try:
                table = read_vote_table(rows.path, id_column=self.section.id_column)
            except ValueError:
                return None
            if len(table) == rows.num_rows:
                return table.fractions
        return None

    def _captions(self) -> np.ndarray:
        section, rows = self.section, self.rows
        if section.prompt is not None:
            captions = np.empty(rows.num_rows, dtype=object)
            captions[:] = [section.prompt] * rows.num_rows
            return captions
        if rows.has(section.caption_column):
            return rows.strings(section.caption_column)
        fractions = self._gz2_fractions()
        if fractions is None:
            raise ValueError(f"{rows.path}: no caption column {section.caption_column!r} and no "
                             "GZ2 vote fractions to caption; set conditions.caption_column, or "
                             "conditions.prompt for one caption for every object")
        from galaxy_hpc.data.captions import CaptionConfig, Captioner

        captions = np.empty(rows.num_rows, dtype=object)
        captions[:] = Captioner(CaptionConfig(survey=section.survey)).captions(fractions)
        return captions

    def _vectors(self, generator: Any) -> tuple[list[str], np.ndarray]:
        names = list(self.section.columns or generator.condition_names or [])
        if not names:
            raise ValueError("conditions.columns: the model does not name its condition "
                             "columns; list them in the model's order")
        expected = getattr(generator, "num_conditions", len(names))
        if len(names) != expected:
            raise ValueError(f"conditions.columns lists {len(names)} columns, the model takes "
                             f"{expected} conditions")
        rows = self.rows
        missing = [name for name in names if not rows.has(name)]
        if not missing:
            return names, np.stack([rows.numbers(n) for n in names], axis=1)
        gz2 = _gz2_positions(names)
        fractions = self._gz2_fractions() if gz2 is not None else None
        if fractions is None:
            raise ValueError(f"{rows.path}: no column(s) {', '.join(missing[:4])}"
                             f"{', ...' if len(missing) > 4 else ''} (the model's conditions); "
                             f"columns there: {', '.join(rows.names[:8])}")
        return names, fractions[:, gz2]

    def _classes(self) -> list[list[str]]:
        section = self.section
        if section.class_column is not None:
            return row_classes(None, self.rows.strings(section.class_column))
        captions = self.captions
        if captions is None and self.rows.has(section.caption_column):
            captions = self.rows.strings(section.caption_column)
        if captions is None:
            fractions = self._gz2_fractions()
            if fractions is None:
                raise ValueError(f"conditions.oversample: {self.rows.path} has no classes "
                                 "(no caption column, no GZ2 votes): set conditions.class_column")
            from galaxy_hpc.data.captions import CaptionConfig, Captioner

            captions = np.array(Captioner(CaptionConfig(survey=section.survey))
                                .captions(fractions), dtype=object)
        return row_classes(captions, None)

    def _num_objects(self, requested: int | None) -> int:
        if self.selection == "sample":
            assert requested is not None  # the config requires it
            return requested
        available = self.rows.num_rows * self.section.per_row
        if requested is None:
            return available
        if requested > available:
            raise ValueError(f"num_objects {requested} is more than the {self.rows.num_rows} "
                             f"rows of {self.rows.path} x per_row {self.section.per_row} = "
                             f"{available}; raise conditions.per_row or use selection: sample")
        return requested

    # -- per object ---------------------------------------------------------------------
    def rows_of(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        if self.selection == "each":
            return indices // self.section.per_row
        picks = np.searchsorted(self._cdf, condition_uniforms(self.seed, indices), side="right")
        return np.minimum(picks, self.rows.num_rows - 1).astype(np.int64)

    def _carried(self, names: list[str] | None) -> dict[str, np.ndarray]:
        if names is None:
            names = GZ2_FRACTIONS if all(self.rows.has(n) for n in GZ2_FRACTIONS) else []
        missing = [n for n in names if not self.rows.has(n)]
        if missing:
            raise ValueError(f"conditions.carry_columns: {self.rows.path} has no column "
                             f"{missing[0]!r}")
        return {n: self.rows.numbers(n) for n in names if n not in self.vector_names}

    def _class_labels(self) -> dict[str, np.ndarray]:
        """The source rows' class, as text, under its own name: conditions.class_column,
        else a text `class` or `label` column (CLASS_COLUMNS: an ingest's class folders,
        Galaxy10's named codes). The catalog carries it, so each generated galaxy is shown
        and counted under the class of the row it was drawn from (the report's grids)."""
        name = self.section.class_column
        if name is None:
            name = next((n for n in CLASS_COLUMNS if self.rows.has(n)
                         and np.asarray(self.rows.raw(n)).dtype.kind in "USOT"), None)
        taken = {"caption", "source_row", "source_id", *self.vector_names, *self.carried}
        if name is None or name in taken:
            return {}
        return {name: self.rows.strings(name)}

    def columns(self) -> dict[str, str]:
        """The store columns this source records per object (name -> store dtype)."""
        names: dict[str, str] = {"source_row": "int64", "source_id": "str"}
        if self.kind == "text":
            names["caption"] = "str"
        names.update({name: "float64" for name in self.vector_names})
        names.update({name: "float64" for name in self.carried})
        names.update({name: "str" for name in self.classes})
        if self.oversampled is not None:
            names["rare_class"] = "bool"
        return names

    def column_info(self) -> dict[str, dict[str, str]]:
        """Unit and description of each of columns(), for the store: conditions and
        carried values as the source describes them (else as the registry does), marked
        as what the model was given or what the source row carried."""
        from galaxy_hpc.data.columns import column_info, condition_info

        out = {}
        for name in self.columns():
            if name in self.vector_names or name in self.carried:
                info = condition_info(name, carried=name not in self.vector_names,
                                      source=self.rows.column_info(name))
            else:
                info = column_info(name)
            out[name] = info.as_dict()
        return {name: info for name, info in out.items() if info}

    def batch(self, indices: np.ndarray) -> ConditionBatch:
        rows = self.rows_of(indices)
        columns: dict[str, np.ndarray] = {"source_row": rows, "source_id": self.ids[rows]}
        out = ConditionBatch(indices=np.asarray(indices, dtype=np.int64),
                             negative_prompt=self.section.negative_prompt, columns=columns)
        if self.captions is not None:
            out.captions = list(self.captions[rows])
            out.caption_ids = self.caption_ids[rows]
            out.vocabulary = self.vocabulary
            columns["caption"] = self.captions[rows]
        if self.vectors is not None:
            out.vectors = self.vectors[rows]
            columns.update({n: self.vectors[rows, k] for k, n in enumerate(self.vector_names)})
        columns.update({name: values[rows] for name, values in self.carried.items()})
        columns.update({name: values[rows] for name, values in self.classes.items()})
        if self.oversampled is not None:
            columns["rare_class"] = self.oversampled.rare[rows]
        if self.section.img2img:
            out.init_images = self.rows.store.read_images_at(rows)
            out.strength = self.section.strength
        return out

    def provenance(self) -> dict[str, Any]:
        section = self.section
        info: dict[str, Any] = {**self.rows.identity, "selection": self.selection,
                                "per_row": section.per_row, "num_objects": self.num_objects}
        if self.kind == "text":
            info.update(caption=("prompt" if section.prompt is not None else
                                 section.caption_column if self.rows.has(section.caption_column)
                                 else "captioned from GZ2 vote fractions"),
                        prompt=section.prompt, negative_prompt=section.negative_prompt,
                        distinct_captions=len(self.vocabulary))
        else:
            info["columns"] = list(self.vector_names)
        if self.oversampled is not None:
            info["oversample"] = {"factor": section.oversample,
                                  "rare_fraction": section.rare_fraction,
                                  "class_column": section.class_column,
                                  **self.oversampled.report()}
        if section.img2img:
            info["img2img"] = {"strength": section.strength}
        if self.carried:
            info["carried_columns"] = list(self.carried)
        if self.classes:
            info["class_column"] = next(iter(self.classes))
        return info


def _gz2_positions(names: list[str]) -> list[int] | None:
    """Positions among the 37 answers of GZ2 fraction column names, None if any is not one."""
    positions = []
    for name in names:
        try:
            answer, suffix = parse_column(name)
        except ValueError:
            return None
        if suffix not in (None, "fraction", "debiased", "weighted_fraction"):
            return None
        positions.append(answer.index)
    return positions
