"""Mechanism labels for learned embeddings: a name → label mapping and how names match.

A label file is a TSV with a name column (a compound or a gene) and a label column; the Drug
Repurposing Hub's ``drh_repurposing_drugs_*.txt`` (``pert_iname``, ``moa``) reads as it ships.
A simulated world's labels are :func:`lpm.sim.truth.read_target_mechanisms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lpm.data.symbols import COMBINATION_SEPARATOR
from lpm.errors import LpmInputError, first_line

#: Columns of an annotation TSV, tried in order: the name (a compound or gene) and its label.
ANNOTATION_KEYS: Final = ("name", "compound", "pert_iname", "gene", "target")
ANNOTATION_LABELS: Final = ("mechanism", "moa")


@dataclass(frozen=True)
class Annotations:
    """Exact names, plus case- and punctuation-free keys where those are unambiguous."""

    exact: Mapping[str, str]
    loose: Mapping[str, str]

    @classmethod
    def of(cls, annotations: Mapping[str, str]) -> Annotations:
        from lpm.priors.compounds import compound_key

        by_key: dict[str, set[str]] = {}
        for name, label in annotations.items():
            by_key.setdefault(compound_key(name), set()).add(label)
        loose = {k: next(iter(v)) for k, v in by_key.items() if k and len(v) == 1}
        return cls(dict(annotations), loose)

    def mechanism(self, targets: list[str]) -> str | None:
        """The label of every target joined by ``+``; none unless each one is annotated."""
        from lpm.priors.compounds import compound_key

        labels = []
        for t in targets:
            label = self.exact.get(t) or self.loose.get(compound_key(t))
            if label is None:
                return None
            labels.append(label)
        return COMBINATION_SEPARATOR.join(labels) if labels else None


def load_mechanism_annotations(path: str | Path) -> dict[str, str]:
    """A name → mechanism mapping from a tab-separated file with a header.

    The name column is the first of ``name``, ``compound``, ``pert_iname``, ``gene``, ``target``
    present; the label column the first of ``mechanism``, ``moa``. Lines starting with ``!`` are
    comments (as in the Drug Repurposing Hub file), empty labels are skipped, and a name with
    several labels gets them sorted and joined by ``|``.

    Parameters
    ----------
    path
        The TSV file.

    Returns
    -------
    dict
        Name → mechanism label.
    """
    import polars as pl

    path = Path(path)
    try:
        table = pl.read_csv(
            path, separator="\t", comment_prefix="!", infer_schema=False, quote_char=None
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LpmInputError(path, f"cannot read annotations: {first_line(exc)}") from None
    key = next((c for c in ANNOTATION_KEYS if c in table.columns), None)
    label = next((c for c in ANNOTATION_LABELS if c in table.columns), None)
    if key is None or label is None:
        raise LpmInputError(
            path,
            f"annotations need a name column ({', '.join(ANNOTATION_KEYS)}) and a label column "
            f"({', '.join(ANNOTATION_LABELS)}); found {', '.join(table.columns) or 'none'}",
        )
    found: dict[str, set[str]] = {}
    for name, value in table.select(key, label).iter_rows():
        if name and value and name.strip() and value.strip():
            found.setdefault(name.strip(), set()).add(value.strip())
    return {name: "|".join(sorted(labels)) for name, labels in found.items()}


__all__ = ["ANNOTATION_KEYS", "ANNOTATION_LABELS", "Annotations", "load_mechanism_annotations"]
