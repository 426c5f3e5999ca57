"""Long and wide tables: synthetic files for each rule and error, real files where present."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.tables import read_table
from lpm.data.store import write_store
from lpm.errors import LpmInputError
from tests.conftest import shared_data as _real

CRISPRI = IngestOptions(perturbation_type="CRISPRi")

LABELS = """pert,gene,label,split
AAMP,ATP5IF1,1,train
AAMP,BTG1,0,train
AARS,ATP5IF1,0,test
AARS,BTG1,1,test
"""


def _rejected(
    tmp_path: Path,
    path: Path,
    match: str,
    options: IngestOptions = CRISPRI,
    reader: Callable[[Path, IngestOptions], IngestResult] = read_table,
) -> LpmInputError:
    """The reader (or the store write after it) refuses with one line naming the file; nothing is written."""
    before = set(tmp_path.iterdir())
    with pytest.raises(LpmInputError, match=match) as err:
        result = reader(path, options)
        write_store(result.measurements, tmp_path / "store", controls=result.controls)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert set(tmp_path.iterdir()) == before
    return err.value


def _write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# --- long tables ----------------------------------------------------------------------------


def test_long_labels_binary_with_cell_line_from_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv.gz", LABELS)
    result = read_table(path, IngestOptions(perturbation_type="CRISPRi", dataset="perturbqa"))
    m = result.measurements
    assert m.columns == ["context", "perturbation", "readout", "value", "dataset", "readout_type"]
    assert set(m["context"]) == {"perturbqa/K562"}
    assert set(m["perturbation"]) == {"CRISPRi:AAMP", "CRISPRi:AARS"}
    assert set(m["readout_type"]) == {"binary"}
    assert sorted(m["value"].to_list()) == [0, 0, 1, 1]
    assert result.notes["dropped_columns"] == ["split"]
    assert "K562" in result.notes["cell_line"]
    assert write_store(m, tmp_path / "store").n_rows == 4


def test_dataset_defaults_to_file_stem(tmp_path: Path) -> None:
    path = _write(tmp_path / "rpe1-de.csv", LABELS)
    result = read_table(path, CRISPRI)
    assert set(result.measurements["context"]) == {"rpe1-de/RPE1"}
    assert "file stem" in result.notes["dataset"]


def test_direction_file_readouts_are_qualified(tmp_path: Path) -> None:
    de = _write(tmp_path / "k562-de.csv.gz", LABELS)
    dr = _write(tmp_path / "k562-dir.csv.gz", LABELS)
    opts = IngestOptions(perturbation_type="CRISPRi", dataset="perturbqa")
    a, b = read_table(de, opts), read_table(dr, opts)
    assert set(b.measurements["readout"]) == {"ATP5IF1:up", "BTG1:up"}
    assert "up-regulated" in b.notes["direction_labels"]
    both = pl.concat([a.measurements, b.measurements])
    assert write_store(both, tmp_path / "store").n_rows == 8  # no key collides


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("x_hepg2.tsv", "\t"),
        ("x_hepg2.txt", "\t"),
        ("x_hepg2.txt.gz", ","),
        ("x_hepg2.tsv.gz", "\t"),
    ],
)
def test_separators(tmp_path: Path, name: str, sep: str) -> None:
    path = _write(tmp_path / name, LABELS.replace(",", sep))
    m = read_table(path, CRISPRI).measurements
    assert m.height == 4 and set(m["context"]) == {"x_hepg2/HEPG2"}


def test_parquet_with_symbols_context_and_store_columns(tmp_path: Path) -> None:
    path = tmp_path / "effects.parquet"
    pl.DataFrame(
        {
            "cell_line": ["A375", "A375", "toy/B", "toy/B"],
            "perturbation": ["compound:trametinib", "CRISPRi:B+CRISPRi:A", "control", "CRISPRi:A"],
            "readout": ["G1", "G1", "G1", "G1"],
            "value": [0.5, -1.0, 3.0, 0.25],
            "dose": [1.0, None, None, None],
            "n_cells": [10, 20, 30, 40],
        }
    ).write_parquet(path)
    result = read_table(path, IngestOptions(dataset="lincs", readout_type="delta"))
    m = result.measurements.sort("value")
    assert m["context"].to_list() == ["lincs/A375", "toy/B", "lincs/A375", "toy/B"]
    assert m["perturbation"].to_list() == [
        "CRISPRi:A+CRISPRi:B",
        "CRISPRi:A",
        "compound:trametinib",
        "control",
    ]
    assert m["n_cells"].to_list() == [20, 40, 10, 30]
    assert m["dose"].to_list()[2] == 1.0
    assert set(m["readout_type"]) == {"delta"}
    write_store(m, tmp_path / "store")


def test_column_options_and_case(tmp_path: Path) -> None:
    text = "Knockdown,Measured,LFC,Line\nA,G1,0.5,jurkat\nA,G2,-0.5,jurkat\n"
    path = _write(tmp_path / "screen.csv", text)
    opts = IngestOptions(
        perturbation_column="knockdown",
        readout_column="Measured",
        value_column="lfc",
        context_column="Line",
        perturbation_type="CRISPRko",
    )
    m = read_table(path, opts).measurements
    assert set(m["context"]) == {"screen/JURKAT"}
    assert set(m["perturbation"]) == {"CRISPRko:A"}
    assert set(m["readout_type"]) == {"delta"}


def test_custom_control_label(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562.csv", "pert,gene,value\nnon-targeting,G1,0.1\nA,G1,0.5\n")
    m = read_table(
        path, IngestOptions(perturbation_type="CRISPRi", control_label="non-targeting")
    ).measurements
    assert set(m["perturbation"]) == {"control", "CRISPRi:A"}


def test_bare_names_need_type(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS)
    _rejected(
        tmp_path, path, "holds bare names .*'AAMP'.*pass --perturbation-type", IngestOptions()
    )


def test_unknown_type(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS)
    _rejected(
        tmp_path,
        path,
        "unknown perturbation type 'CRISPR'",
        IngestOptions(perturbation_type="CRISPR"),
    )


def test_missing_value_column_lists_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-x.csv", "pert,gene,split\nA,G1,train\n")
    _rejected(tmp_path, path, "no value column; pass --value-column; found: pert, gene, split")


def test_missing_perturbation_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-x.csv", "drug,gene,label\nA,G1,1\n")
    _rejected(tmp_path, path, "no perturbation column .*found: drug, gene, label")


def test_misnamed_option_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS)
    opts = IngestOptions(perturbation_type="CRISPRi", value_column="score")
    _rejected(
        tmp_path,
        path,
        r"no value column 'score' \(--value-column\); found: pert, gene, label, split",
        opts,
    )


def test_ambiguous_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-x.csv", "pert,target,gene,label\nA,A,G1,1\n")
    _rejected(
        tmp_path, path, "ambiguous perturbation column: 'pert', 'target'.*--perturbation-column"
    )


def test_neither_long_nor_wide(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-x.csv", "pert,note\nA,x\n")
    _rejected(tmp_path, path, "neither a long table .* nor a wide matrix")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
def test_nonfinite_value(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS.replace("AARS,BTG1,1", f"AARS,BTG1,{bad}"))
    _rejected(tmp_path, path, "column 'label' has 1 NaN/inf value.*data row 4")


def test_non_numeric_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS.replace("AARS,BTG1,1", "AARS,BTG1,yes"))
    _rejected(tmp_path, path, "column 'label' has non-numeric value 'yes'")


def test_duplicate_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS + "AAMP,BTG1,1,train\n")
    _rejected(tmp_path, path, "1 duplicate .* key.*perturbation='CRISPRi:AAMP'.*readout='BTG1'")


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress((LABELS * 200).encode())
    path = tmp_path / "k562-de.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    _rejected(tmp_path, path, "cannot parse table")


def test_too_many_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS + "AARS,G9,1,test,extra\n")
    _rejected(tmp_path, path, "cannot parse table")


def test_short_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", "pert,gene,label\nA,G1,1\nA,G2\n")
    _rejected(tmp_path, path, "column 'label' has 1 empty value")


def test_unclosed_quote(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", 'pert,gene,label\nA,"G1,1\n')
    _rejected(tmp_path, path, "cannot parse table")


def test_header_only(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", "pert,gene,label\n")
    _rejected(tmp_path, path, "no data rows")


def test_no_cell_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "labels.csv", LABELS)
    _rejected(tmp_path, path, "pass --cell-line")
    m = read_table(path, IngestOptions(perturbation_type="CRISPRi", cell_line="hap1")).measurements
    assert set(m["context"]) == {"labels/HAP1"}


def test_bad_readout_type(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562-de.csv", LABELS)
    _rejected(
        tmp_path,
        path,
        "unknown readout type 'counts'",
        IngestOptions(perturbation_type="CRISPRi", readout_type="counts"),
    )


def test_binary_readout_type_with_non_binary_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562.csv", "pert,gene,value\nA,G1,0.5\n")
    before = set(tmp_path.iterdir())
    result = read_table(path, IngestOptions(perturbation_type="CRISPRi", readout_type="binary"))
    with pytest.raises(LpmInputError, match="not 0 or 1"):
        write_store(result.measurements, tmp_path / "store")
    assert set(tmp_path.iterdir()) == before


# --- wide tables ----------------------------------------------------------------------------

WIDE = """target_symbol,target_ensembl,n_target_cells,HBZ|ENSG00000130656,H1-2|ENSG00000187837,|ENSG00000196565
HMGB1,ENSG00000189403,20,-0.25,0.23,0.5
HDDC2,ENSG00000111906,18,0.1,-0.2,0.0
"""


def test_wide_matrix(tmp_path: Path) -> None:
    path = _write(tmp_path / "replogle_k562_delta.csv.gz", WIDE)
    result = read_table(path, IngestOptions(perturbation_type="CRISPRi", dataset="replogle22"))
    m = result.measurements
    assert result.notes["layout"] == "wide"
    assert result.notes["dropped_columns"] == ["target_ensembl"]
    assert m.height == 6
    assert set(m["readout"]) == {"HBZ", "H1-2", "ENSG00000196565"}
    assert set(m["context"]) == {"replogle22/K562"}
    row = m.filter((pl.col("perturbation") == "CRISPRi:HDDC2") & (pl.col("readout") == "H1-2")).row(
        0, named=True
    )
    assert row["value"] == pytest.approx(-0.2) and row["n_cells"] == 18
    assert set(m["readout_type"]) == {"delta"}
    write_store(m, tmp_path / "store")


def test_wide_duplicate_readouts(tmp_path: Path) -> None:
    text = "target_symbol,HBZ|ENSG1,HBZ|ENSG2\nA,0.1,0.2\n"
    path = _write(tmp_path / "k562_wide.csv", text)
    _rejected(tmp_path, path, "columns 'HBZ|ENSG1' and 'HBZ|ENSG2' both name readout 'HBZ'")


@pytest.mark.parametrize("missing", ["nan", "", "NA"])
def test_wide_missing_cell_is_an_unmeasured_row(tmp_path: Path, missing: str) -> None:
    path = _write(tmp_path / "k562_wide.csv", WIDE.replace(",-0.2,", f",{missing},"))
    result = read_table(path, CRISPRI)
    m = result.measurements
    assert m.height == 5  # 2 perturbations x 3 readouts, less the one cell not measured
    assert m.filter(pl.col("perturbation") == "CRISPRi:HDDC2")["readout"].to_list() == [
        "HBZ",
        "ENSG00000196565",
    ]
    unmeasured = result.notes["unmeasured"]
    assert unmeasured["nan_cells"] == 1 and unmeasured["rows_dropped"] == 1
    write_store(m, tmp_path / "store")


@pytest.mark.parametrize("bad", ["inf", "-inf"])
def test_wide_inf_refused(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path / "k562_wide.csv", WIDE.replace(",-0.2,", f",{bad},"))
    _rejected(tmp_path, path, "column 'H1-2|ENSG00000187837' has 1 inf value.*data row 2")


def test_wide_duplicate_perturbation(tmp_path: Path) -> None:
    path = _write(tmp_path / "k562_wide.csv", WIDE + "HMGB1,ENSG00000189403,20,1,1,1\n")
    _rejected(tmp_path, path, "duplicate .*CRISPRi:HMGB1")


# --- real data ----------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_perturbqa_four_cell_lines(tmp_path: Path) -> None:
    folder = _real("perturbqa_de_labels")
    opts = IngestOptions(dataset="perturbqa", perturbation_type="CRISPRi")
    frames = []
    for line in ("k562", "rpe1", "hepg2", "jurkat"):
        for kind in ("de", "dir"):
            m = read_table(folder / f"{line}-{kind}.csv.gz", opts).measurements
            assert set(m["readout_type"]) == {"binary"}
            assert set(m["value"].unique()) == {0.0, 1.0}
            assert all(r.endswith(":up") for r in m["readout"].unique()) == (kind == "dir")
            frames.append(m)
    both = pl.concat(frames)
    assert set(both["context"]) == {
        "perturbqa/K562",
        "perturbqa/RPE1",
        "perturbqa/HEPG2",
        "perturbqa/JURKAT",
    }
    assert both.height == 157679 + 19980 + 187089 + 26652 + 126889 + 17860 + 142822 + 20058
    store = write_store(both, tmp_path / "store")
    assert len(store.contexts) == 4


# --- ids that look like numbers stay text -----------------------------------------------------


def test_numeric_looking_ids_stay_text_in_long_csv(tmp_path: Path) -> None:
    text = "context,perturbation,readout,value\n01,007,2,0.5\n01,007,3,0.25\n01,1e3,2,0.1\n"
    path = _write(tmp_path / "ids.csv", text)
    m = read_table(path, IngestOptions(dataset="d", perturbation_type="CRISPRi")).measurements
    assert sorted(m["context"].unique()) == ["d/01"]
    assert sorted(m["perturbation"].unique()) == ["CRISPRi:007", "CRISPRi:1e3"]
    assert sorted(m["readout"].unique()) == ["2", "3"]
    write_store(m, tmp_path / "store")


def test_parquet_symbol_columns_take_integers_as_digits_and_refuse_floats(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ids.parquet"
    pl.DataFrame({"perturbation": [7, 12], "readout": [2, 2], "value": [0.5, 0.1]}).write_parquet(
        path
    )
    opts = IngestOptions(dataset="d", cell_line="K562", perturbation_type="CRISPRi")
    m = read_table(path, opts).measurements
    assert m["perturbation"].to_list() == ["CRISPRi:7", "CRISPRi:12"]
    assert m["readout"].to_list() == ["2", "2"]
    pl.DataFrame({"perturbation": [7.0], "readout": ["G1"], "value": [0.5]}).write_parquet(path)
    _rejected(tmp_path, path, "column 'perturbation' holds Float64 values, not text", opts)
