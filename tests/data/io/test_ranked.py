"""Ranked gene lists (``--layout ranked``): binary "gene in the top k" readouts, the panel rule,
one-line errors, and the sigrecon Replogle lists where present."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data.io.base import IngestOptions
from lpm.data.io.ingest import ingest, read_source
from lpm.errors import LpmInputError
from tests.conftest import error_line, lpm, shared_data

#: Two lines × two knock-downs, four genes ranked in each list; sigrecon's in_up column too.
LISTS = """context,perturbation,rank,gene,in_up
k562,A,1,G1,True
k562,A,2,G2,True
k562,A,3,G3,False
k562,A,4,G4,False
k562,B,1,G3,True
k562,B,2,G1,False
k562,B,3,G4,False
k562,B,4,G5,False
rpe1,A,1,G2,True
rpe1,A,2,G1,True
rpe1,A,3,G5,False
rpe1,A,4,G3,False
rpe1,B,1,G4,True
rpe1,B,2,G3,True
rpe1,B,3,G1,False
rpe1,B,4,G2,False
"""
RANKED = IngestOptions(
    layout="ranked", dataset="sig", perturbation_type="CRISPRi", top_k=2, panel_min_lists=1
)


def _write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _labels(rows: pl.DataFrame) -> dict[tuple[str, str], list[str]]:
    """The genes labelled 1 in each (context, perturbation) list."""
    pos = rows.filter(pl.col("value") == 1.0).sort("readout")
    return {
        (c, p): g["readout"].to_list()
        for (c, p), g in pos.group_by("context", "perturbation", maintain_order=True)
    }


def test_lists_become_exact_binary_labels(tmp_path: Path) -> None:
    src = _write(tmp_path / "lists.csv.gz", LISTS)
    store = ingest([src], tmp_path / "s", options=RANKED)
    rows = store.read()
    # every list × every gene in some top 2 (G1..G4; G5 is never in a top 2)
    assert rows.height == 4 * 4
    assert sorted(rows["readout"].unique().to_list()) == ["G1", "G2", "G3", "G4"]
    assert set(rows["readout_type"].to_list()) == {"binary"}
    assert set(rows["value"].to_list()) == {0.0, 1.0}
    assert _labels(rows) == {
        ("sig/K562", "CRISPRi:A"): ["G1", "G2"],
        ("sig/K562", "CRISPRi:B"): ["G1", "G3"],
        ("sig/RPE1", "CRISPRi:A"): ["G1", "G2"],
        ("sig/RPE1", "CRISPRi:B"): ["G3", "G4"],
    }
    assert store.controls() is None
    notes = store.meta.notes[str(src)]
    assert notes["dropped_columns"] == ["in_up"]
    assert notes["ranked"]["panel_genes"] == 4 and notes["ranked"]["rows"] == 16


def test_panel_keeps_genes_in_the_top_k_of_enough_lists(tmp_path: Path) -> None:
    src = _write(tmp_path / "lists.csv", LISTS)
    opts = IngestOptions(**{**RANKED.__dict__, "panel_min_lists": 3})
    rows = read_source(src, opts).measurements
    # top-2 counts: G1 in 3 lists, G2 in 2, G3 in 2, G4 in 1
    assert rows["readout"].unique().to_list() == ["G1"]
    assert rows.height == 4
    assert rows.sort("context", "perturbation")["value"].to_list() == [1.0, 1.0, 1.0, 0.0]
    opts = IngestOptions(**{**RANKED.__dict__, "top_k": 3, "panel_min_lists": 3})
    three = read_source(src, opts).measurements
    assert sorted(three["readout"].unique().to_list()) == ["G1", "G3"]


def test_duplicate_gene_keeps_its_best_rank_only_when_asked(tmp_path: Path) -> None:
    text = "context,perturbation,rank,gene\nk562,A,1,G1\nk562,A,2,G2\nk562,A,3,G1\n"
    text += "k562,B,1,G2\nk562,B,2,G3\nk562,B,3,G1\n"
    src = _write(tmp_path / "dup.csv", text)
    with pytest.raises(LpmInputError, match=r"name a gene twice in one list.*'G1'.*ranks 1, 3"):
        read_source(src, RANKED)
    opts = IngestOptions(**{**RANKED.__dict__, "duplicate_genes": "best-rank"})
    res = read_source(src, opts)
    assert _labels(res.measurements) == {
        ("sig/K562", "CRISPRi:A"): ["G1", "G2"],
        ("sig/K562", "CRISPRi:B"): ["G2", "G3"],
    }
    assert res.notes["ranked"]["duplicate_genes"].startswith("1 rows dropped")


def test_ensembl_ids_map_to_symbols_before_the_top_k(tmp_path: Path) -> None:
    info = tmp_path / "gene_info.tsv"
    info.write_text(
        "entrez\tsymbol\tgene_name\tgene_type\tchromosome\tensembl_id\talias_symbol\n"
        "1\tTP53\tp53\tprotein-coding\t17\tENSG00000141510\tP53\n"
        "2\tMYC\tmyc\tprotein-coding\t8\tENSG00000136997;ENSG00000999999\tc-Myc\n"
    )
    text = (
        "context,perturbation,rank,gene\na549,JQ1,1,ENSG00000141510\na549,JQ1,2,ENSG00000000001\n"
    )
    text += "a549,JQ1,3,ENSG00000136997\na549,JQ1,4,ENSG00000999999\n"
    src = _write(tmp_path / "sciplex.csv", text)
    opts = IngestOptions(
        layout="ranked", dataset="sx", perturbation_type="compound", top_k=3,
        panel_min_lists=1, gene_info=info,
    )  # fmt: skip
    with pytest.raises(LpmInputError, match="twice in one list after --gene-info mapping"):
        read_source(src, opts)
    res = read_source(src, IngestOptions(**{**opts.__dict__, "duplicate_genes": "best-rank"}))
    assert _labels(res.measurements) == {
        ("sx/A549", "compound:JQ1"): ["ENSG00000000001", "MYC", "TP53"]
    }
    assert "3 mapped to official symbols" in res.notes["gene_ids"]


def test_bare_name_with_plus_is_one_agent(tmp_path: Path) -> None:
    text = "context,perturbation,rank,gene\na549,(+)-JQ1,1,G1\na549,(+)-JQ1,2,G2\n"
    src = _write(tmp_path / "l.csv", text)
    opts = IngestOptions(**{**RANKED.__dict__, "perturbation_type": "compound", "top_k": 1})
    res = read_source(src, opts)
    assert res.measurements["perturbation"].unique().to_list() == ["compound:(plus)-JQ1"]
    assert "spelled 'plus'" in res.notes["perturbation_names"]


HEADER = "context,perturbation,rank,gene\n"


@pytest.mark.parametrize(
    ("body", "options", "message"),
    [
        ("k562,A,1,G1\nk562,A,1.5,G2\n", {}, r"column 'rank' has 1 non-integer rank.*'1.5'.*data row 2"),
        ("k562,A,1,G1\nk562,A,NaN,G2\n", {}, r"column 'rank' has 1 NaN/inf rank"),
        ("k562,A,1,G1\nk562,A,x,G2\n", {}, r"column 'rank' has 1 non-numeric or empty rank"),
        ("k562,A,1,G1\nk562,A,0,G2\n", {}, r"column 'rank' has 1 below 1 rank"),
        ("k562,A,1,G1\nk562,A,1,G2\n", {}, r"column 'rank': rank 1 repeats in list \('k562', 'A'\)"),
        ("k562,A,1,G1\nk562,A,3,G2\n", {}, r"has 2 genes but ranks up to 3"),
        ("k562,A,1,G1\n", {}, r"ranks 1 genes, fewer than --top-k 2"),
        ("k562,A,1,G1\nk562,A,2,G1\n", {}, r"column 'gene': 2 rows name a gene twice"),
        ("k562,A,1,G1\nk562,A,2,\n", {}, r"column 'gene' has 1 empty value"),
        ("k562,A,1,G1\nk562,A,2,G2\n", {"perturbation_type": None}, r"bare names.*--perturbation-type"),
        ("k562,A,1,G1\nk562,A,2,G2\n", {"control_label": "ctl"}, r"no control rows.*--control-label"),
        ("k562,A,1,G1\nk562,A,2,G2\n", {"readout_type": "delta"}, r"binary .in the top k. readouts"),
        ("k562,A,1,G1\nk562,A,2,G2\n", {"panel_min_lists": 2}, r"no gene is in the top 2 of 2 lists"),
        ("k562,A,1,G1\nk562,A,2,G2\n", {"duplicate_genes": "first"}, r"unknown --duplicate-genes"),
        ("k562,control,1,G1\nk562,control,2,G2\n", {}, r"no list can be the control"),
        ("k562,A,1,G1\nk562,A,2,G2\n", {"layout": None}, r"--top-k, --panel-min-lists apply only to --layout ranked"),
    ],
)  # fmt: skip
def test_bad_lists_are_one_line_errors_and_nothing_is_written(
    tmp_path: Path, body: str, options: dict[str, object], message: str
) -> None:
    src = _write(tmp_path / "l.csv", HEADER + body)
    with pytest.raises(LpmInputError, match=message) as err:
        ingest([src], tmp_path / "s", options=IngestOptions(**{**RANKED.__dict__, **options}))
    assert str(err.value).startswith(str(src)) and "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.csv"]


def test_missing_column_names_the_option(tmp_path: Path) -> None:
    src = _write(tmp_path / "l.csv", "context,perturbation,position,gene\nk562,A,1,G1\n")
    with pytest.raises(LpmInputError, match=r"no rank column 'rank' \(--value-column\); found:"):
        read_source(src, RANKED)
    opts = IngestOptions(**{**RANKED.__dict__, "value_column": "position", "top_k": 1})
    assert read_source(src, opts).measurements["value"].to_list() == [1.0]


def test_cli_ingests_ranked_lists_and_refuses_bad_ones_with_exit_2(tmp_path: Path) -> None:
    src = _write(tmp_path / "lists.csv", LISTS)
    args = ["--layout", "ranked", "--dataset", "sig", "--perturbation-type", "CRISPRi"]
    proc = lpm("ingest", str(src), "--out", str(tmp_path / "s"), *args, "--top-k", "2",
               "--panel-min-lists", "2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "panel = 3 of 5 genes in the top 2 of >= 2 lists; 12 rows, 7 labelled 1" in proc.stdout
    bad = _write(tmp_path / "bad.csv", HEADER + "k562,A,1,G1\nk562,A,2.5,G2\n")
    proc = lpm("ingest", str(bad), "--out", str(tmp_path / "b"), *args, "--top-k", "1")
    assert proc.returncode == 2
    assert "column 'rank' has 1 non-integer rank(s), first '2.5'" in error_line(proc)
    assert not (tmp_path / "b").exists()


def test_the_five_baselines_fit_binary_readouts_without_controls(tmp_path: Path) -> None:
    """Ranked lists have no control rows; every baseline trains and is scored by AUROC/AUPRC."""
    from lpm.data import make_split
    from lpm.evaluation import evaluate
    from lpm.models import get_model

    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(12)]
    lines = []
    for c in ("k562", "rpe1", "hepg2"):
        for p in range(8):
            order = rng.permutation(genes)
            lines += [f"{c},P{p},{r + 1},{g}" for r, g in enumerate(order)]
    src = _write(tmp_path / "l.csv", HEADER + "\n".join(lines) + "\n")
    opts = IngestOptions(**{**RANKED.__dict__, "top_k": 4})
    rows = ingest([src], tmp_path / "s", options=opts).read()
    split = make_split(rows, kind="unseen_pair", seed=0)
    for name in ("no_change", "context_mean", "perturbation_mean", "additive", "linear"):
        model = get_model(name).fit(split.train, split.val)
        # additive predicts combinations from their singles: none here, as in any list file
        test = split.test.filter(pl.Series(model.supported(split.test)))
        assert (test.height > 0) == (name != "additive"), name
        if test.height:
            scores = evaluate(test, model.predict(test), train=split.train, n_boot=10).summary
            assert {"auroc", "auprc"} <= set(scores["metric"].to_list()), name


@pytest.mark.realdata
def test_sigrecon_perturbseq_lists_ingest_and_share_knockdowns_across_lines() -> None:
    folder = shared_data("sigrecon_ranked_signatures")
    opts = IngestOptions(
        layout="ranked", dataset="sigrecon_perturbseq", perturbation_type="CRISPRi"
    )
    res = read_source(folder / "perturbseq_ranked_up_lists.csv.gz", opts)
    rows, ranked = res.measurements, res.notes["ranked"]
    assert ranked["lists"] == 1170 and ranked["list_lengths"] == "1000-1000"
    assert rows["context"].unique().sort().to_list() == [
        "sigrecon_perturbseq/K562",
        "sigrecon_perturbseq/RPE1",
    ]
    assert rows["perturbation"].n_unique() == 585
    assert rows["perturbation"].str.starts_with("CRISPRi:").all()
    assert rows.height == 1170 * ranked["panel_genes"] > 1_000_000
    # the same knock-down's top-100 genes overlap more between K562 and RPE1 than two
    # different knock-downs' do
    genes = rows["readout"].unique().sort().to_list()
    perts = rows["perturbation"].unique().sort().to_list()
    mats = {}
    for line in ("K562", "RPE1"):
        wide = (
            rows.filter(pl.col("context") == f"sigrecon_perturbseq/{line}")
            .pivot(on="readout", index="perturbation", values="value")
            .sort("perturbation")
        )
        assert wide["perturbation"].to_list() == perts
        mats[line] = wide.select(genes).to_numpy()
    overlap = mats["K562"] @ mats["RPE1"].T
    same = float(np.diag(overlap).mean())
    different = float(overlap[~np.eye(len(perts), dtype=bool)].mean())
    assert same > 2 * different, (same, different)
