"""Compound annotations (Drug Repurposing Hub, DrugCentral) and name matching: the real files
where present, small synthetic files for the edge cases and every malformed-input error."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.priors.compounds import (
    COMPOUND_COLUMNS,
    compound_key,
    compound_mechanisms,
    compound_targets,
    load_compound_annotations,
    load_compound_ids,
    match_compounds,
)
from tests.conftest import shared_data

GENE_INFO = "human_gene_info_orgHsEgDb_3.16.tsv.gz"


def _write(path: Path, text: str) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


# --- synthetic: compounds -----------------------------------------------------------------------


@pytest.fixture
def compound_folder(tmp_path: Path) -> Path:
    _write(
        tmp_path / "drh_repurposing_drugs_20200324.txt",
        "!Source\tThe Drug Repurposing Hub\n"
        "pert_iname\tclinical_phase\tmoa\ttarget\tdisease_area\tindication\n"
        "trametinib\tLaunched\tMEK inhibitor\tMAP2K1|MAP2K2\toncology\tmelanoma\n"
        "PLX4720\tPreclinical\tRAF inhibitor\tBRAF\t\t\n"
        "YM-201636\tPreclinical\tPI3K inhibitor|PIKfyve inhibitor\t\t\t\n"
        "fedratinib\tPhase 3\tJAK inhibitor\tJAK2\t\t\n"
        "nothing-known\tPreclinical\t\t\t\t\n",
    )
    _write(
        tmp_path / "drugcentral_drug_target.tsv",
        "DRUG_ID\tDRUG_NAME\tGENE\tSWISSPROT\tACTION_TYPE\n"
        "1\tTrametinib\tMAP2K1\tMP2K1_HUMAN\tINHIBITOR\n"
        "2\tdrugx\tgyrA|EGFR\tGYRA_ECOLI|EGFR_HUMAN\tINHIBITOR\n",
    )
    _write(
        tmp_path / "drh_repurposing_samples_20200324.txt.gz",
        "broad_id\tpert_iname\tsmiles\n"
        "BRD-K12502280-001-01-1\tfedratinib\tC\n"
        "BRD-K16478699-001-01-1\tPLX4720\tC\n",
    )
    return tmp_path


def test_compound_annotations_split_targets_and_mechanisms(compound_folder: Path) -> None:
    ann = load_compound_annotations(compound_folder)
    assert ann.columns == list(COMPOUND_COLUMNS)
    assert compound_targets(ann) == {
        "PLX4720": {"BRAF"},
        "drugx": {"EGFR"},  # the E. coli target is dropped
        "fedratinib": {"JAK2"},
        "trametinib": {"MAP2K1", "MAP2K2"},
    }
    assert compound_targets(ann, sources=["drugcentral"]) == {
        "drugx": {"EGFR"},
        "trametinib": {"MAP2K1"},  # DrugCentral's "Trametinib" takes the Hub's spelling
    }
    mech = compound_mechanisms(ann)
    assert mech["YM-201636"] == {"PI3K inhibitor", "PIKfyve inhibitor"}
    assert "nothing-known" not in mech and "drugx" not in mech
    assert ann.filter(pl.col("compound") == "YM-201636")["target"].to_list() == [None]


def test_match_compounds_by_name_key_and_broad_id(compound_folder: Path) -> None:
    ann = load_compound_annotations(compound_folder)
    ids = load_compound_ids(compound_folder)
    assert ids.rows() == [("BRD-K12502280", "fedratinib"), ("BRD-K16478699", "PLX4720")]
    assert compound_key("PLX-4720") == compound_key("plx4720")
    names = ["compound:trametinib", "PLX-4720", "TG-101348", "BRD-K16478699", "unknown"]
    assert match_compounds(names, ann) == {
        "compound:trametinib": "trametinib",
        "PLX-4720": "PLX4720",
    }
    m = match_compounds(names, ann, compound_ids=ids, broad_ids={"TG-101348": "BRD-K12502280"})
    assert m == {
        "compound:trametinib": "trametinib",
        "PLX-4720": "PLX4720",
        "TG-101348": "fedratinib",
        "BRD-K16478699": "PLX4720",
    }
    assert compound_targets(ann, names=m)["TG-101348"] == {"JAK2"}


def test_compound_files_missing_or_malformed(compound_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match="no such Repurposing Hub drug file"):
        load_compound_annotations(tmp_path / "nowhere")
    _write(compound_folder / "drugcentral_drug_target.tsv", "DRUG_NAME\tTARGET\nx\ty\n")
    with pytest.raises(LpmInputError, match=r"misses column.*GENE") as err:
        load_compound_annotations(compound_folder)
    assert err.value.source is not None and err.value.source.endswith("drugcentral_drug_target.tsv")


# --- real files ---------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_compounds_cover_the_a375_plate() -> None:
    ad = pytest.importorskip("anndata")
    folder = shared_data("compounds")
    plate = shared_data("lincs_l1000_a375") / "LJP005_A375_24H_L1000_level3_level4_annotated.h5ad"
    info = shared_data("gene_ontology") / GENE_INFO
    ann = load_compound_annotations(folder, gene_info=info)
    assert set(ann["source"]) == {"drh", "drugcentral"}
    assert compound_targets(ann)["trametinib"] == {"MAP2K1", "MAP2K2"}
    assert compound_mechanisms(ann)["trametinib"] == {"MEK inhibitor"}

    obs = ad.read_h5ad(plate, backed="r").obs
    wells = obs[obs["pert_type"] != "ctl_vehicle"].drop_duplicates("pert_iname")
    names = [f"compound:{n}" for n in wells["pert_iname"]]
    assert len(names) == 59
    by_name = match_compounds(names, ann)
    ids = dict(zip([f"compound:{n}" for n in wells["pert_iname"]], wells["pert_id"], strict=True))
    full = match_compounds(names, ann, compound_ids=load_compound_ids(folder), broad_ids=ids)
    assert by_name["compound:PLX-4720"] == "PLX4720"
    assert full["compound:TG-101348"] == "fedratinib"
    coverage = {
        label: (len(m), len(compound_targets(ann, names=m)), len(compound_mechanisms(ann, names=m)))
        for label, m in (("name", by_name), ("broad_id", full))
    }
    assert coverage == {"name": (42, 41, 42), "broad_id": (45, 44, 45)}
    # every target the plate's own annotation lists is among ours
    for name, listed in zip(wells["pert_iname"], wells["target"].astype(str), strict=True):
        if listed != "nan":
            ours = compound_targets(ann, names=full)[f"compound:{name}"]
            assert set(listed.split("|")) <= ours, name
