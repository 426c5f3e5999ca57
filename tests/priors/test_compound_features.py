"""Compound structure features: SMILES lookup, Morgan fingerprints, Parquet cache."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.priors import compound_features as cf
from tests.conftest import shared_data

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
ASPIRIN_OTHER = "OC(=O)c1ccccc1OC(C)=O"  # same molecule, atoms in another order
CAFFEINE = "Cn1cnc2c1c(=O)n(C)c(=O)n2C"


def _fp(table: pl.DataFrame, name: str) -> list[int]:
    return list(
        table.filter(pl.col("compound") == name).drop("compound", "smiles", strict=False).row(0)
    )


def test_fingerprints_shape_bits_and_dtype() -> None:
    t = cf.morgan_fingerprints({"aspirin": ASPIRIN, "caffeine": CAFFEINE}, n_bits=1024)
    assert t.shape == (2, 1 + 1024)
    assert t.columns[:3] == ["compound", "fp_0", "fp_1"] and t.columns[-1] == "fp_1023"
    assert t["compound"].to_list() == ["aspirin", "caffeine"]
    assert all(t[c].dtype == pl.UInt8 for c in t.columns[1:])
    values = t.drop("compound").to_numpy()
    assert set(values.ravel().tolist()) <= {0, 1}
    n_on = values.sum(axis=1).tolist()
    assert all(5 < n < 60 for n in n_on)  # small molecules set a few dozen bits at radius 2
    assert _fp(t, "aspirin") != _fp(t, "caffeine")
    assert cf.morgan_fingerprints({"x": ASPIRIN}).width == 1 + 2048


def test_same_molecule_written_differently_gives_same_fingerprint() -> None:
    t = cf.morgan_fingerprints({"a": ASPIRIN, "b": ASPIRIN_OTHER, "c": CAFFEINE})
    assert _fp(t, "a") == _fp(t, "b")
    smaller = cf.morgan_fingerprints({"a": ASPIRIN}, radius=1)
    assert sum(_fp(smaller, "a")) < sum(_fp(t, "a"))


def test_invalid_smiles_names_the_compound(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LpmInputError, match="compound 'broken'") as err:
        cf.morgan_fingerprints({"aspirin": ASPIRIN, "broken": "C1CC(("})
    assert "\n" not in str(err.value)
    assert "SMILES Parse Error" not in capfd.readouterr().err  # RDKit's log is silenced
    with pytest.raises(LpmInputError, match="n_bits"):
        cf.morgan_fingerprints({"aspirin": ASPIRIN}, n_bits=0)


def test_empty_mapping_gives_empty_table() -> None:
    t = cf.morgan_fingerprints({}, n_bits=8)
    assert t.shape == (0, 9)


def _compound_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "compounds"
    folder.mkdir()
    rows = [
        "!header comment",
        "broad_id\tpert_iname\tsmiles",
        f"BRD-K00000001-001-01-1\taspirin\t{ASPIRIN}",
        f'BRD-K00000001-001-02-1\taspirin\t"{ASPIRIN} |r|"',
        f"BRD-K00000002-001-01-1\tcaffeine\t{CAFFEINE}",
    ]
    with gzip.open(folder / "drh_repurposing_samples_20200324.txt.gz", "wt") as fh:
        fh.write("\n".join(rows) + "\n")
    with gzip.open(folder / cf.LINCS_SMILES, "wt") as fh:
        fh.write(f"BRD-K00000003, {ASPIRIN_OTHER}\n")
    return folder


def test_compound_smiles_matches_names_ids_and_keys(tmp_path: Path) -> None:
    folder = _compound_folder(tmp_path)
    got = cf.compound_smiles(
        folder,
        ["compound:aspirin", "Caffeine", "BRD-K00000003", "compound:unknown", "x"],
        broad_ids={"x": "BRD-K00000002"},
    )
    assert got == {
        "compound:aspirin": ASPIRIN,  # quotes and the CXSMILES extension dropped
        "Caffeine": CAFFEINE,  # by compound_key
        "BRD-K00000003": ASPIRIN_OTHER,  # a Broad id name, through the LINCS table
        "x": CAFFEINE,  # through the given Broad id to the Hub name
    }
    with pytest.raises(LpmInputError, match="no compound structure file"):
        cf.compound_smiles(tmp_path / "empty", ["aspirin"])


def test_compound_features_cache_hit_does_not_recompute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _compound_folder(tmp_path)
    cache = tmp_path / "cache"
    names = ["caffeine", "aspirin", "nothing"]
    first = cf.compound_features(folder, names, cache_dir=cache, n_bits=256)
    assert first["compound"].to_list() == ["aspirin", "caffeine"]
    assert first.columns[:2] == ["compound", "smiles"] and first.width == 2 + 256
    files = list(cache.glob("compound_features-*.parquet"))
    assert len(files) == 1 and not list(cache.glob(".*.tmp"))
    mtime = files[0].stat().st_mtime_ns

    def boom(*args: object, **kwargs: object) -> pl.DataFrame:
        raise AssertionError("recomputed despite the cache")

    monkeypatch.setattr(cf, "morgan_fingerprints", boom)
    second = cf.compound_features(folder, list(reversed(names)), cache_dir=cache, n_bits=256)
    assert second.equals(first)
    assert files[0].stat().st_mtime_ns == mtime
    with pytest.raises(AssertionError, match="recomputed"):  # other settings: another key
        cf.compound_features(folder, names, cache_dir=cache, n_bits=128)


@pytest.mark.realdata
def test_l1000_a375_compounds_resolve() -> None:
    from lpm.data.io.gct import parse_gct

    compounds = shared_data("compounds")
    plate = shared_data("lincs_l1000_a375") / "test_l1000.gct"
    meta = parse_gct(plate).col_meta
    treated = meta[meta["pert_type"].isin(["trt_cp", "trt_poscon"])]
    pairs = dict(zip(treated["pert_iname"], treated["pert_id"], strict=True))
    names = sorted(f"compound:{n}" for n in pairs)
    assert len(names) == 59
    by_name = cf.compound_smiles(compounds, names)
    assert len(by_name) >= 40, sorted(set(names) - set(by_name))  # 44 by name alone
    with_ids = cf.compound_features(
        compounds, names, broad_ids={f"compound:{n}": b for n, b in pairs.items()}
    )
    assert with_ids.height >= 50  # 53 with the plate's Broad ids; 6 unnamed BRD ids do not
    assert set(by_name) <= set(with_ids["compound"])


def test_known_smiles_come_first_and_need_no_folder(tmp_path: Path) -> None:
    names = ["compound:mine", "compound:aspirin"]
    known = {"compound:mine": CAFFEINE, "compound:aspirin": ASPIRIN}
    assert cf.compound_smiles(None, names, known=known) == known
    assert cf.compound_smiles(tmp_path, names, known=known) == known  # an empty folder is not read
    with pytest.raises(LpmInputError, match="no compound structure file"):
        cf.compound_smiles(tmp_path, names, known={"compound:mine": CAFFEINE})
    table = cf.compound_features(None, names, known=known)
    assert table["compound"].to_list() == ["compound:aspirin", "compound:mine"]
