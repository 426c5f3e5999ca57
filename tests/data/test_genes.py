"""Gene-symbol harmonisation: lookup order, ambiguity, frames, collisions; real tables where present."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from lpm.data.genes import harmonise_frame, load_gene_aliases
from lpm.data.io.base import IngestOptions
from lpm.data.store import write_store
from lpm.errors import LpmInputError
from tests.conftest import shared_data as _real

HEADER = "entrez\tsymbol\tgene_name\tgene_type\tchromosome\tensembl_id\talias_symbol"
ROWS = [
    "1\tMAP3K21\tkinase\tprotein-coding\t1\tENSG00000143674\tKIAA1804;MAP3K21;MLK4",
    "2\tHMGB1\thigh mobility group\tprotein-coding\t13\tENSG00000189403;ENSG00000999999\tHMG1;HMGB1",
    "3\tC1orf112\tchr1 orf\tprotein-coding\t1\tENSG00000000460\tC1orf112;FIRRM",
    "4\tGARS1\tglycyl-tRNA synthetase\tprotein-coding\t7\tENSG00000106105\tGARS;GARS1",
    "5\tGART\tGAR transformylase\tprotein-coding\t21\tENSG00000159131\tGARS;GART",
    "6\tGBA1\tglucosylceramidase\tprotein-coding\t1\tENSG00000177628\tGBA;GBA1",
    "7\tGBAP1\tGBA pseudogene\tpseudo\t1\tENSG00000160766\tGBA;GBAP1",
    "8\tALG1L1P\tALG1L pseudogene\tpseudo\t3\t\tALG1L;ALG1L1P",
    "9\tMTCO2P12\tMT-CO2 pseudogene\tpseudo\t1\tENSG00000229344\tMT-CO2;MTCO2P12",
    "10\tCOX2\tcytochrome c oxidase II\tprotein-coding\tMT\tENSG00000198712\tCOX2;MTCO2",
    "11\tSHARED1\tshares an Ensembl id\tprotein-coding\t2\tENSG00000111111\tSHARED1",
    "12\tSHARED2\tshares an Ensembl id\tprotein-coding\t2\tENSG00000111111\tSHARED2",
    "13\tMCS+9.7\tunusable symbol\tother\t1\t\tMCS+9.7;MCS97",
    "14\tKLF1\tKruppel like factor 1\tprotein-coding\t19\tENSG00000105610\tEKLF;KLF1",
    "15\tMAP2K6\tMAP kinase kinase 6\tprotein-coding\t17\tENSG00000108984\tMAP2K6;MEK6",
]


@pytest.fixture
def gene_info(tmp_path: Path) -> Path:
    path = tmp_path / "gene_info.tsv.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *ROWS]) + "\n").encode()))
    return path


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("MAP3K21", "MAP3K21"),  # official symbol
        ("KIAA1804", "MAP3K21"),  # unique alias
        ("ENSG00000189403", "HMGB1"),  # Ensembl id
        ("ENSG00000999999.7", "HMGB1"),  # second Ensembl id, version dropped
        ("c1orf112", "C1orf112"),  # upper-case official symbol
        ("firrm", "C1orf112"),  # upper-case alias
        ("GARS", "GARS"),  # alias of two genes: ambiguous, kept
        ("ENSG00000111111", "ENSG00000111111"),  # Ensembl id of two genes: ambiguous, kept
        ("GBA", "GBA1"),  # the pseudogene sharing the alias does not count
        ("ALG1L", "ALG1L1P"),  # an alias only a pseudogene carries still maps
        ("MT-CO2", "MT-CO2"),  # mitochondrial names never map through aliases
        ("MCS97", "MCS97"),  # symbols with lpm separators are never targets
        ("NOTAGENE", "NOTAGENE"),
    ],
)
def test_lookup_order(gene_info: Path, name: str, want: str) -> None:
    assert load_gene_aliases(gene_info).harmonise([name]).mapped == [want]


def test_harmonise_counts(gene_info: Path) -> None:
    res = load_gene_aliases(gene_info).harmonise(
        ["KIAA1804", "KIAA1804", "HMGB1", "FOO", "GARS", "FOO"]
    )
    assert res.mapped == ["MAP3K21", "MAP3K21", "HMGB1", "FOO", "GARS", "FOO"]
    assert res.n_renamed == 2
    assert res.n_unmapped == 3
    assert res.unmapped == ["FOO", "GARS"]


def test_loaded_once_per_path(gene_info: Path) -> None:
    assert load_gene_aliases(gene_info) is load_gene_aliases(str(gene_info))


def test_bad_gene_info(tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match="no such gene info file"):
        load_gene_aliases(tmp_path / "absent.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("entrez\tsymbol\n1\tA\n")
    with pytest.raises(LpmInputError, match=r"misses column.*ensembl_id, alias_symbol"):
        load_gene_aliases(bad)


def _frame(rows: list[tuple[str, str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")


def test_harmonise_frame(gene_info: Path, tmp_path: Path) -> None:
    df = _frame(
        [
            ("d/K562", "CRISPRi:KIAA1804", "ENSG00000189403", 1.0),
            ("d/K562", "CRISPRa:MEK6+CRISPRa:EKLF", "KIAA1804:up", 1.0),
            ("d/K562", "compound:KIAA1804", "FOO", 0.5),
            ("d/K562", "control", "c1orf112", 0.0),
        ]
    )
    out, notes = harmonise_frame(df, gene_info)
    assert out["perturbation"].to_list() == [
        "CRISPRi:MAP3K21",
        "CRISPRa:KLF1+CRISPRa:MAP2K6",  # members mapped, then re-sorted
        "compound:KIAA1804",  # compounds untouched
        "control",
    ]
    assert out["readout"].to_list() == ["HMGB1", "MAP3K21:up", "FOO", "C1orf112"]
    assert df["readout"].to_list()[0] == "ENSG00000189403"  # input unchanged
    assert notes["readouts"]["n"] == 4 and notes["readouts"]["renamed"] == 3
    assert notes["readouts"]["unmapped"] == 1 and notes["readouts"]["unmapped_examples"] == ["FOO"]
    assert notes["perturbation_targets"]["renamed"] == 3
    assert "KIAA1804->MAP3K21" in notes["perturbation_targets"]["renamed_examples"]
    write_store(out, tmp_path / "store")


def test_harmonise_frame_without_gene_info() -> None:
    df = _frame([("d/K562", "CRISPRi:KIAA1804", "G", 1.0)])
    out, notes = harmonise_frame(df, None)
    assert out is df and notes == {"harmonised": False}


def test_harmonise_controls_frame(gene_info: Path) -> None:
    controls = pl.DataFrame({"context": ["d/K562"], "readout": ["KIAA1804"], "value": [2.0]})
    out, notes = harmonise_frame(controls, gene_info)
    assert out["readout"].to_list() == ["MAP3K21"] and "perturbation_targets" not in notes


def test_collision_raises(gene_info: Path, tmp_path: Path) -> None:
    df = _frame(
        [
            ("d/K562", "CRISPRi:HMGB1", "KIAA1804", 1.0),
            ("d/K562", "CRISPRi:HMGB1", "MLK4", 2.0),
            ("d/K562", "CRISPRi:HMGB1", "KLF1", 3.0),
        ]
    )
    before = set(tmp_path.iterdir())
    with pytest.raises(
        LpmInputError,
        match=r"src\.csv: gene harmonisation makes 2 rows share a key.*readout='MAP3K21'.*'KIAA1804' and 'MLK4'",
    ):
        harmonise_frame(df, gene_info, source="src.csv")
    assert set(tmp_path.iterdir()) == before
    # the same names in different contexts do not collide
    ok = df.with_columns(pl.Series("context", ["d/K562", "d/RPE1", "d/K562"]))
    out, _ = harmonise_frame(ok, gene_info)
    assert out["readout"].to_list() == ["MAP3K21", "MAP3K21", "KLF1"]


def test_perturbation_collision_raises(gene_info: Path) -> None:
    df = _frame(
        [
            ("d/K562", "CRISPRi:HMG1", "KLF1", 1.0),
            ("d/K562", "CRISPRi:ENSG00000189403", "KLF1", 2.0),
        ]
    )
    with pytest.raises(
        LpmInputError, match="perturbation 'CRISPRi:ENSG00000189403' and 'CRISPRi:HMG1'"
    ):
        harmonise_frame(df, gene_info)


def test_combination_members_merging_raises(gene_info: Path) -> None:
    df = _frame([("d/K562", "CRISPRa:HMG1+CRISPRa:HMGB1", "KLF1", 1.0)])
    with pytest.raises(LpmInputError, match="merges the members"):
        harmonise_frame(df, gene_info)


# --- real data ----------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_gene_info_and_sources() -> None:
    from lpm.data.io.h5ad import read_h5ad_pseudobulk
    from lpm.data.io.npz import read_effect_matrix_npz
    from lpm.data.io.tables import read_table

    info = _real("gene_ontology/human_gene_info_orgHsEgDb_3.16.tsv.gz")
    aliases = load_gene_aliases(info)
    assert aliases.harmonise(["KIAA1804", "HIST1H1C", "ENSG00000189403", "MT-CO2"]).mapped == [
        "KIAA1804",  # not in this table's aliases
        "H1-2",
        "HMGB1",
        "MT-CO2",
    ]
    opts = IngestOptions(dataset="replogle22", perturbation_type="CRISPRi")
    npz = read_effect_matrix_npz(_real("replogle22_k562_gw/replogle_k562.npz"), opts).measurements
    csv = read_table(
        _real("replogle22_k562_gw/replogle_k562_gwps_2000pert_x_300genes_delta_log1p.csv.gz"), opts
    ).measurements
    hn, notes_n = harmonise_frame(npz, info)
    hc, _ = harmonise_frame(csv, info)
    assert notes_n["perturbation_targets"]["renamed"] > 50 and notes_n["readouts"]["renamed"] > 50
    assert notes_n["readouts"]["unmapped"] < 30 and notes_n["perturbation_targets"]["unmapped"] < 10
    # after harmonisation the NPZ (Ensembl ids where unannotated) and the CSV name the same things
    key = ["context", "perturbation", "readout"]
    joined = hn.join(hc, on=key, how="full", coalesce=True)
    assert (
        joined.height == 600_000
        and joined["value"].null_count() == 0
        and joined["value_right"].null_count() == 0
    )
    h5 = read_h5ad_pseudobulk(_real("norman19_mcfaline23_devel/devel.h5ad"), IngestOptions())
    _, notes_h = harmonise_frame(h5.measurements, info)
    assert notes_h["readouts"]["n"] == 500 and notes_h["readouts"]["unmapped"] <= 5
    labels = read_table(
        _real("perturbqa_de_labels/k562-de.csv.gz"),
        IngestOptions(dataset="perturbqa", perturbation_type="CRISPRi"),
    )
    _, notes_q = harmonise_frame(labels.measurements, info)
    assert notes_q["readouts"]["renamed"] > 0 and notes_q["readouts"]["unmapped"] < 50
