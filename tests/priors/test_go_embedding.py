"""Gene embeddings from GO annotations: genes sharing terms land close; seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lpm.errors import LpmInputError
from lpm.priors.go_embedding import go_gene_embedding


def _gene2go(path: Path) -> Path:
    lines = ["symbol\tgo_id"]
    for i in range(6):  # two families of genes: 0-2 share terms A/B, 3-5 share C/D
        terms = ("GO:A", "GO:B") if i < 3 else ("GO:C", "GO:D")
        lines += [f"00{i}\t{t}" for t in terms]
    lines.append("000\tGO:E")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_genes_sharing_terms_are_close_and_ids_stay_text(tmp_path: Path) -> None:
    table = go_gene_embedding(_gene2go(tmp_path / "g.tsv"), n_components=2, seed=0)
    assert table["symbol"].to_list() == [f"00{i}" for i in range(6)]
    x = table.drop("symbol").to_numpy()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert x[1] @ x[2] > x[1] @ x[4]
    again = go_gene_embedding(tmp_path / "g.tsv", n_components=2, seed=0)
    assert again.equals(table)


def test_unreadable_or_too_small_tables_are_named(tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match="no such gene→GO table file"):
        go_gene_embedding(tmp_path / "none.tsv")
    small = tmp_path / "small.tsv"
    small.write_text("symbol\tgo_id\nA\tGO:1\n")
    with pytest.raises(LpmInputError, match="too few genes or terms"):
        go_gene_embedding(small)
