"""Reference gene networks (ChIP-seq, CollecTRI, DoRothEA, TRRUST, Pathway Commons): real files
where present, small synthetic files for the formats' edge cases and every malformed-input error."""

from __future__ import annotations

import doctest
import gzip
from pathlib import Path

import polars as pl
import pytest

import lpm.priors.networks as networks
from lpm.errors import LpmInputError
from lpm.priors.networks import NETWORK_COLUMNS, load_gene_network
from tests.conftest import shared_data

GENE_INFO = "human_gene_info_orgHsEgDb_3.16.tsv.gz"


def _write(path: Path, text: str) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.fixture
def gene_info(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "gene_info.tsv",
        "symbol\tensembl_id\talias_symbol\n"
        "BMAL1\tENSG00000133794\tARNTL;MOP3\n"
        "GTF2H2C\tENSG00000183474\t\n"
        "C1orf112\tENSG00000000460\tFLJ10706\n"
        "MYC\tENSG00000136997\tc-Myc\n",
    )


def _check_network(net: pl.DataFrame) -> None:
    assert net.columns == list(NETWORK_COLUMNS)
    assert net.schema["weight"] == pl.Float64 and net.schema["sign"] == pl.Int8
    assert (net["source"] != net["target"]).all()
    assert not net.select(pl.struct("source", "target").is_duplicated().any()).item()
    assert net["sign"].drop_nulls().is_in([-1, 1]).all()


# --- synthetic: formats, merging, harmonisation -------------------------------------------------


def test_dorothea_confidence_becomes_weight_and_only_a_has_sign(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "dorothea_ABC.csv.gz",
        "source,confidence,target,weight\nMYC,A,TERT,1.0\nFOS,A,NFKB1,-1.0\nFOS,B,JUN,0.5\nFOS,c,ATF3,0.333\n",
    )
    net = load_gene_network(f)
    _check_network(net)
    assert net.rows() == [
        ("FOS", "ATF3", 1.0, None, "dorothea"),
        ("FOS", "JUN", 2.0, None, "dorothea"),
        ("FOS", "NFKB1", 3.0, -1, "dorothea"),
        ("MYC", "TERT", 3.0, 1, "dorothea"),
    ]


def test_merging_keeps_max_weight_agreed_sign_and_drops_self_loops(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "t.tsv",
        "TF\tTarget\tRegulation\tReference\n"
        "MYC\tTERT\tActivation\t1\n"
        "myc\tTERT\tUnknown\t2\n"  # same edge after upper-casing; Unknown does not cancel +1
        "MYC\tCDK4\tActivation\t3\n"
        "MYC\tCDK4\tRepression\t4\n"  # disagreeing signs: null
        "MYC\tMYC\tRepression\t5\n",  # self-loop
    )
    net = load_gene_network(f, resource="mine")
    assert net.rows() == [("MYC", "CDK4", 1.0, None, "mine"), ("MYC", "TERT", 1.0, 1, "mine")]


def test_chipseq_weight_is_peak_max_and_cell_line_names_resource(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "Hep_G2_ChipSeq.csv.gz",
        ",target,weight,source\n0,GTF2H2C_2,50,KAT7\n1,GTF2H2C,70,KAT7\n2,TERT,120,KAT7\n3,TERT,90,KAT7\n",
    )
    net = load_gene_network(f)
    _check_network(net)
    assert net.rows() == [
        ("KAT7", "GTF2H2C", 70.0, None, "chipseq_HepG2"),
        ("KAT7", "GTF2H2C_2", 50.0, None, "chipseq_HepG2"),  # a second gene copy, not a typo
        ("KAT7", "TERT", 120.0, None, "chipseq_HepG2"),
    ]


def test_gene_info_maps_aliases_and_ensembl_ids_to_official_spelling(
    tmp_path: Path, gene_info: Path
) -> None:
    f = _write(
        tmp_path / "collectri.csv",
        "source,target,weight,PMID\n"
        "ARNTL,c1orf112,1,1\n"  # alias and case-insensitive symbol
        "ENSG00000133794,FLJ10706,1,2\n"  # Ensembl id and alias: the same edge, weight 1
        "MOP3,BMAL1,-1,3\n"  # self-loop after harmonisation
        "BMAL1,unknowngene,-1,4\n",
    )
    net = load_gene_network(f, gene_info=gene_info)
    assert net.rows() == [
        ("BMAL1", "C1orf112", 1.0, 1, "collectri"),
        ("BMAL1", "UNKNOWNGENE", 1.0, -1, "collectri"),
    ]
    plain = load_gene_network(f)  # without gene info: upper-cased only
    assert set(plain["target"]) == {"C1ORF112", "FLJ10706", "BMAL1", "UNKNOWNGENE"}


def test_headerless_trrust_and_sif_are_recognised(tmp_path: Path) -> None:
    trrust = _write(tmp_path / "trrust_rawdata.human.tsv", "AATF\tBAX\tRepression\t22909821\n")
    assert load_gene_network(trrust).rows() == [("AATF", "BAX", 1.0, -1, "trrust")]
    sif = _write(
        tmp_path / "pc.sif",
        "MEF2B\tcontrols-expression-of\tBCL6\nMEF2B\tin-complex-with\tEP300\n",
    )
    assert load_gene_network(sif).rows() == [("MEF2B", "BCL6", 1.0, None, "pathwaycommons")]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("x.csv", "a,b,c\n1,2,3\n", "unrecognised gene network format"),
        ("x.csv", "", "empty file"),
        ("x.tsv", "TF\tTarget\tRegulation\nA\tB\tMaybe\n", "not Activation, Repression or Unknown"),
        ("x.csv", "source,confidence,target,weight\nA,E,B,1\n", "not A, B or C"),
        ("K562_ChipSeq.csv", ",target,weight,source\n0,B,high,A\n", "not a finite number"),
        ("K562_ChipSeq.csv", ",target,weight,source\n0,B,inf,A\n", "not a finite number"),
        ("x.csv", "source,target,weight,PMID\nA,,1,1\n", "without a target gene"),
        ("x.csv", "source,target,weight,PMID\nA,A,1,1\n", "no edges left"),
        ("x.tsv", "UpGene\tType\tDownGene\nA\tin-complex-with\tB\n", "no 'controls-expression-of'"),
    ],
)
def test_malformed_network_files_name_file_and_problem(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    f = _write(tmp_path / name, content)
    with pytest.raises(LpmInputError, match=problem) as err:
        load_gene_network(f)
    assert err.value.source == str(f)
    assert "\n" not in str(err.value)


def test_truncated_gzip_and_missing_file(tmp_path: Path) -> None:
    good = gzip.compress(b"source,target,weight,PMID\n" + b"A,B,1,1\n" * 1000)
    f = tmp_path / "collectri.csv.gz"
    f.write_bytes(good[: len(good) // 2])
    with pytest.raises(LpmInputError, match="truncated or corrupt"):
        load_gene_network(f)
    with pytest.raises(LpmInputError, match="no such gene network file"):
        load_gene_network(tmp_path / "absent.csv")


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("file", "resource", "n_edges", "n_signed"),
    [
        ("collectri_2023__hengkp.csv.gz", "collectri", 42339, 42332),
        ("dorothea_ABC__hengkp.csv.gz", "dorothea", 32275, 6080),
        ("trrust_v2_human__hasanalanya.tsv.gz", "trrust", 8402, 4637),
        ("pathwaycommons_controls_expression_of__priori.tsv.gz", "pathwaycommons", 122759, 0),
    ],
)
def test_real_tf_regulons(file: str, resource: str, n_edges: int, n_signed: int) -> None:
    info = shared_data("gene_ontology") / GENE_INFO
    net = load_gene_network(shared_data("tf_regulons") / file, gene_info=info)
    _check_network(net)
    assert (net["resource"] == resource).all()
    assert (net.height, net["sign"].is_not_null().sum()) == (n_edges, n_signed)
    # renamed genes arrive under their current symbol (TRRUST/Pathway Commons say ARNTL)
    if resource in ("trrust", "pathwaycommons"):
        assert "BMAL1" in set(net["source"]) | set(net["target"])
        assert "ARNTL" not in set(net["source"]) | set(net["target"])


@pytest.mark.realdata
def test_real_chipseq_k562() -> None:
    info = shared_data("gene_ontology") / GENE_INFO
    net = load_gene_network(
        shared_data("causalbench_chipseq") / "K562_ChipSeq.csv.gz", gene_info=info
    )
    _check_network(net)
    assert net.height == 892823
    assert (net["resource"] == "chipseq_K562").all()
    assert net["source"].n_unique() == 173
    assert net["weight"].min() == 50.0 and net["sign"].null_count() == net.height
    assert {"GTF2H2C_2", "C4B_2"} <= set(net["target"])  # official symbols of gene copies


def test_docstring_examples_run() -> None:
    result = doctest.testmod(networks, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
