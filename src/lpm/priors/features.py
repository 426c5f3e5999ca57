"""Prior-knowledge feature vectors per symbol, the inputs of the LPM's featurised encoders.

A symbol seen in training keeps its learned embedding and adds its encoded features; a symbol
never seen gets the encoded features alone. So a gene never knocked down, a compound never
measured or a cell line never profiled can be predicted, provided a source has features for it.

A source is a table file (Parquet/CSV/TSV: first column the symbol, then numbers) or a keyword
resolved in the priors folder (``$LPM_PRIORS``, else ``shared/data`` or ``../shared/data`` from
the working directory):

``go``
    GO annotations propagated up the DAG, low-rank (:mod:`lpm.priors.go`): genes.
``regulons``
    TF-regulon graph (CollecTRI, DoRothEA) spectral features (:mod:`lpm.priors.regulons`).
``morgan``
    Morgan fingerprints of compounds from their SMILES (:mod:`lpm.priors.compound_features`).

Which key a symbol is looked up by: a table is tried with the symbol as written
(``CRISPRi:MAPK1``), then with its target (``MAPK1``); gene keywords take a genetic member's
target gene or a readout's symbol; ``morgan`` takes a compound member's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import GENETIC_TYPES, TYPE_SEPARATOR
from lpm.errors import LpmInputError
from lpm.priors.locations import cache_folder, priors_folder

KEYWORDS: Final = ("go", "regulons", "morgan")
#: Which symbol kinds a keyword can describe.
_KEYWORD_KINDS: Final = {
    "go": ("member", "readout"),
    "regulons": ("member", "readout"),
    "morgan": ("member",),
}
KINDS: Final = ("member", "context", "readout")


def parse_sources(value: str | Sequence[str] | None) -> list[str]:
    """``"go,morgan"`` or ``["go", "x.parquet"]`` → a list of source specs (empty when None)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [s.strip() for s in items if s and s.strip()]


def _target(symbol: str) -> tuple[str, str]:
    """(type, target) of a single member symbol; ("", symbol) when it has no type."""
    kind, sep, target = symbol.partition(TYPE_SEPARATOR)
    return (kind, target) if sep else ("", symbol)


@lru_cache(maxsize=8)
def _keyword_table(keyword: str, folder: str) -> tuple[dict[str, int], np.ndarray]:
    root = Path(folder)
    if keyword == "go":
        from lpm.priors.go import go_gene_features

        go = root / "gene_ontology"
        table = go_gene_features(
            go / "human_gene2go_direct_orgHsEgDb_3.16.tsv.gz",
            go / "go_parents_GOdb_3.16.tsv.gz",
            cache_dir=cache_folder(),
        )
    elif keyword == "regulons":
        from lpm.priors.regulons import regulon_gene_features

        table = regulon_gene_features(
            root / "tf_regulons",
            gene_info=root / "gene_ontology" / "human_gene_info_orgHsEgDb_3.16.tsv.gz",
            cache_dir=cache_folder(),
        )
    else:  # pragma: no cover - guarded by FeatureSource
        raise ValueError(keyword)
    return _index(table)


@lru_cache(maxsize=8)
def _file_table(path: str) -> tuple[dict[str, int], np.ndarray]:
    from lpm.data.io.symbol_tables import read_embedding_table

    return _index(read_embedding_table(path))


def _index(table: pl.DataFrame) -> tuple[dict[str, int], np.ndarray]:
    symbols = table.to_series(0).cast(pl.String).to_list()
    values = table.drop(table.columns[0]).to_numpy().astype(np.float32)
    return {s: i for i, s in enumerate(symbols)}, values


@dataclass(frozen=True)
class FeatureSource:
    """One source of feature vectors for one kind of symbol (member, context or readout)."""

    spec: str
    kind: str
    folder: str = field(default="")  # priors folder of a keyword, fixed when first resolved

    @classmethod
    def of(cls, spec: str, kind: str) -> FeatureSource:
        if kind not in KINDS:
            raise ValueError(kind)
        if spec in KEYWORDS:
            if kind not in _KEYWORD_KINDS[spec]:
                raise LpmInputError(
                    None, f"feature keyword {spec!r} has no features for {kind}s; give a table file"
                )
            return cls(spec, kind, str(priors_folder()))
        if not Path(spec).is_file():
            raise LpmInputError(
                spec, f"feature table not found (or not a keyword: {', '.join(KEYWORDS)})"
            )
        return cls(str(Path(spec).resolve()), kind)

    @property
    def is_keyword(self) -> bool:
        return self.spec in KEYWORDS

    def vectors(self, symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows for ``symbols`` (zeros where absent) and which were found."""
        if self.spec == "morgan":
            return self._fingerprints(symbols)
        index, values = (
            _keyword_table(self.spec, self.folder) if self.is_keyword else _file_table(self.spec)
        )
        rows = np.full(len(symbols), -1, dtype=np.int64)
        for i, s in enumerate(symbols):
            rows[i] = self._row(index, s)
        found = rows >= 0
        out = np.zeros((len(symbols), values.shape[1]), dtype=np.float32)
        out[found] = values[rows[found]]
        return out, found

    def _row(self, index: dict[str, int], symbol: str) -> int:
        if symbol == S.CONTROL:
            return -1
        kind, target = _target(symbol)
        if not self.is_keyword:
            return index.get(symbol, index.get(target, -1))
        if self.kind == "member" and kind not in GENETIC_TYPES:
            return -1  # gene priors describe genetic perturbations' targets, not compounds
        return index.get(target if self.kind == "member" else symbol, -1)

    def _fingerprints(self, symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        from lpm.priors.compound_features import compound_features

        names = [s for s in symbols if _target(s)[0] == "compound"]
        table = (
            compound_features(
                Path(self.folder) / "compounds", sorted(set(names)), cache_dir=cache_folder()
            )
            if names
            else pl.DataFrame()
        )
        width = 2048 if table.height == 0 else table.width - 2
        out = np.zeros((len(symbols), width), dtype=np.float32)
        found = np.zeros(len(symbols), dtype=bool)
        if table.height:
            index = {n: i for i, n in enumerate(table["compound"].to_list())}
            values = table.drop("compound", "smiles").to_numpy().astype(np.float32)
            for i, s in enumerate(symbols):
                j = index.get(s, -1)
                if j >= 0:
                    out[i], found[i] = values[j], True
        return out, found

    def width(self) -> int:
        """Feature width (resolves the source)."""
        if self.spec == "morgan":
            return 2048
        _, values = (
            _keyword_table(self.spec, self.folder) if self.is_keyword else _file_table(self.spec)
        )
        return int(values.shape[1])


def member_types(symbols: Sequence[str]) -> list[str]:
    """The perturbation type of each member symbol ("" for the control)."""
    return [_target(s)[0] for s in symbols]


def feature_table(keyword: str, kind: str = "readout") -> pl.DataFrame:
    """A gene keyword's whole table (``symbol`` + features), e.g. to give a baseline the same
    features (``--param linear.perturbation_embeddings=FILE``)."""
    if keyword not in ("go", "regulons"):
        raise LpmInputError(None, f"gene feature source must be go or regulons, got {keyword!r}")
    index, values = _keyword_table(keyword, FeatureSource.of(keyword, kind).folder)
    symbols = sorted(index, key=index.__getitem__)
    cols = [f"{keyword}_{i}" for i in range(values.shape[1])]
    return pl.DataFrame({"symbol": symbols}).with_columns(pl.DataFrame(values, schema=cols))
