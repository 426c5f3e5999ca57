"""Pairwise phenotype matrices (Norman 2019 growth screen layout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpm.data.io.base import IngestOptions
from lpm.data.io.ingest import ingest
from lpm.errors import LpmInputError
from tests.conftest import shared_data

OPTS = IngestOptions(
    dataset="growth",
    cell_line="K562",
    perturbation_type="CRISPRa",
    control_label="negative",
    layout="pairwise",
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_pairs_singles_and_control(tmp_path: Path) -> None:
    src = _write(
        tmp_path / "m.csv",
        ",A,B,negative\nA,-0.5,-0.9,-0.3\nB,-0.9,-0.4,-0.2\nnegative,-0.3,-0.2,0.0\n",
    )
    rows = ingest([src], tmp_path / "s", options=OPTS).read().sort("perturbation")
    assert rows["perturbation"].to_list() == [
        "CRISPRa:A",
        "CRISPRa:A+CRISPRa:B",
        "CRISPRa:B",
        "control",
    ]
    assert rows["value"].to_list() == pytest.approx([-0.3, -0.9, -0.2, 0.0])
    assert set(rows["readout_type"].to_list()) == {"viability"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (",A,B\nA,1,2\nC,2,1\n", "row and column genes differ"),
        (",A,B\nA,1,inf\nB,inf,1\n", "infinite value"),
        (",A,B\nA,1,x\nB,2,1\n", "non-numeric cell"),
        (",A\nA,1\n", "at least two gene columns"),
    ],
)
def test_bad_matrices_are_refused_and_nothing_is_written(
    tmp_path: Path, text: str, message: str
) -> None:
    src = _write(tmp_path / "m.csv", text)
    with pytest.raises(LpmInputError, match=message) as err:
        ingest([src], tmp_path / "s", options=OPTS)
    assert str(err.value).startswith(str(src))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


@pytest.mark.realdata
def test_norman_growth_screen() -> None:
    folder = shared_data("norman19_gi")
    from lpm.data.io.ingest import read_source

    res = read_source(folder / "processed_fitnesses.csv", OPTS)
    assert res.notes["combinations"] > 6000
    assert res.measurements["perturbation"].str.contains("negative").sum() == 0


def test_numeric_looking_gene_names_stay_text(tmp_path: Path) -> None:
    src = _write(tmp_path / "m.csv", ",007,2\n007,-0.5,-0.9\n2,-0.9,-0.4\n")
    rows = ingest([src], tmp_path / "s", options=OPTS).read().sort("perturbation")
    assert rows["perturbation"].to_list() == ["CRISPRa:007", "CRISPRa:007+CRISPRa:2", "CRISPRa:2"]
