"""Models of combinations whose members have their own doses (``1.5+6``): Salt sums the singles
at the members' doses, Peper and the LPMs tell member doses apart, the other models key on them
or refuse them in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data import schema as S
from lpm.data.io import IngestOptions, ingest
from lpm.data.splits import make_split
from lpm.errors import LpmInputError
from lpm.models.registry import load_model, make_model
from tests.conftest import error_line, lpm
from tests.member_tables import single_effects, write_combination_csv

pytestmark = pytest.mark.usefixtures("one_torch_thread")
AB = "compound:drugA+compound:drugB"
GENES = [f"G{i}" for i in range(6)]
SMALL = {"embedding_dim": 8, "hidden": [16], "max_epochs": 30, "val_fraction": 0.0}


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    folder = tmp_path_factory.mktemp("screen")
    csv = write_combination_csv(folder / "screen.csv")
    options = IngestOptions(perturbation_type="compound", dataset="screen")
    return ingest([csv], folder / "store", options=options).read()


def _at(rows: pl.DataFrame, dose: list[float]) -> pl.DataFrame:
    return rows.filter(
        (pl.col(S.PERTURBATION) == AB)
        & (pl.col(S.MEMBER_DOSE) == pl.lit(dose, pl.List(pl.Float32)))
    ).sort(S.CONTEXT, S.READOUT)


def test_salt_predicts_held_out_combinations_as_the_singles_at_their_doses(
    screen: pl.DataFrame,
) -> None:
    split = make_split(screen, kind="combination", seed=0, test_fraction=0.5)
    test = split.test
    assert test.height and test[S.MEMBER_DOSE].null_count() == 0
    assert set(split.test_groups["group"]) == {"seen2"}
    model = make_model("salt", seed=0).fit(split.train)
    pred = model.predict(test)
    effects = single_effects()
    expected = [
        effects[(ctx.split("/")[1], a.split(":")[1], d[0])][GENES.index(g)]
        + effects[(ctx.split("/")[1], b.split(":")[1], d[1])][GENES.index(g)]
        for ctx, (a, b), g, d in zip(
            test[S.CONTEXT],
            test[S.PERTURBATION].str.split("+").to_list(),
            test[S.READOUT],
            test[S.MEMBER_DOSE].to_list(),
            strict=True,
        )
    ]
    # singles are multiples of 1/64: their sums are exact in float32
    np.testing.assert_array_equal(pred, np.asarray(expected, dtype=np.float32))


def test_salt_leaves_a_member_dose_never_measured_unpredicted(screen: pl.DataFrame) -> None:
    train = screen.filter(~((pl.col(S.PERTURBATION) == "compound:drugB") & (pl.col(S.DOSE) == 6)))
    model = make_model("salt", seed=0).fit(train)
    assert not model.supported(_at(screen, [1.5, 6.0])).any()
    assert model.supported(_at(screen, [6.0, 1.5])).all()


def test_means_keep_member_doses_apart(screen: pl.DataFrame) -> None:
    for name in ("perturbation_mean", "nearest_dose", "linear"):
        model = make_model(name, seed=0).fit(screen)
        a, b = _at(screen, [1.5, 6.0]), _at(screen, [6.0, 1.5])
        pa, pb = model.predict(a), model.predict(b)
        assert not np.allclose(pa, pb), name
        if name == "nearest_dose":  # a measured condition is its own mean
            np.testing.assert_allclose(pa, a[S.VALUE].to_numpy(), rtol=1e-6)
        if name == "perturbation_mean":  # the condition's mean over the contexts
            mean = a.group_by(S.READOUT).agg(pl.col(S.VALUE).mean())
            want = a.join(mean, on=S.READOUT, how="left", maintain_order="left")
            np.testing.assert_allclose(pa, want[f"{S.VALUE}_right"].to_numpy(), rtol=1e-6)


def test_models_that_cannot_tell_member_doses_apart_refuse_them(
    screen: pl.DataFrame, tmp_path: Path
) -> None:
    preds = tmp_path / "p.csv"
    screen.select(S.CONTEXT, S.PERTURBATION, S.READOUT, S.VALUE).unique(
        [S.CONTEXT, S.PERTURBATION, S.READOUT]
    ).write_csv(preds)
    for model in (
        make_model("precomputed", {"path": str(preds)}, seed=0),
        make_model("gene_graph", seed=0),
    ):
        with pytest.raises(LpmInputError, match="member_dose on 84 row"):
            model.fit(screen)
    fitted = make_model("precomputed", {"path": str(preds)}, seed=0).fit(
        screen.filter(pl.col(S.MEMBER_DOSE).is_null()).drop(S.MEMBER_DOSE)
    )
    with pytest.raises(LpmInputError, match="does not take doses/times given per member"):
        fitted.predict(_at(screen, [1.5, 6.0]))


def test_peper_corrects_each_member_dose_pair_on_its_own(screen: pl.DataFrame) -> None:
    split = make_split(screen, kind="combination", seed=0, test_fraction=0.5)
    model = make_model("peper", {"epochs": 20}, seed=0).fit(split.train)
    assert (
        model.n_train_doubles_
        == split.train.filter(pl.col(S.MEMBER_DOSE).is_not_null())
        .select(S.CONTEXT, S.PERTURBATION, S.MEMBER_DOSE)
        .n_unique()
    )  # every training double found its singles at their doses
    pred = model.predict(split.test)
    salt = make_model("salt", seed=0).fit(split.train).predict(split.test)
    assert np.isfinite(pred).all() and not model.fallback(split.test).any()
    assert not np.array_equal(pred, salt)  # corrected, not the plain sum
    assert np.corrcoef(pred, salt)[0, 1] > 0.9


@pytest.mark.parametrize("name", ["lpm", "lpm_fast", "lpm_ame"])
def test_lpms_embed_each_member_with_its_dose(
    screen: pl.DataFrame, name: str, tmp_path: Path
) -> None:
    params = SMALL if name != "lpm_ame" else {"max_epochs": 30, "val_fraction": 0.0}
    model = make_model(name, params, seed=0).fit(screen)
    a, b = _at(screen, [1.5, 6.0]), _at(screen, [6.0, 1.5])
    pa, pb = model.predict(a), model.predict(b)
    assert np.isfinite(pa).all() and np.isfinite(pb).all()
    # the same symbol with no row dose: only the members' own doses tell the two apart
    assert np.abs(pa - pb).max() > 1e-3
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(a), pa)


def test_lpm_trained_without_member_doses_refuses_them(screen: pl.DataFrame) -> None:
    plain = screen.filter(pl.col(S.MEMBER_DOSE).is_null()).drop(S.MEMBER_DOSE)
    model = make_model("lpm_fast", SMALL | {"max_epochs": 2}, seed=0).fit(plain)
    with pytest.raises(LpmInputError, match="trained without them"):
        model.predict(_at(screen, [1.5, 6.0]))


def test_cli_benchmark_on_a_screen_with_member_doses(tmp_path: Path) -> None:
    csv = write_combination_csv(tmp_path / "screen.csv")
    proc = lpm("ingest", str(csv), "--out", str(tmp_path / "s"), "--perturbation-type", "compound")
    assert proc.returncode == 0, proc.stderr
    proc = lpm("benchmark", "--store", str(tmp_path / "s"), "--split", "combination",
               "--models", "salt,perturbation_mean", "--out", str(tmp_path / "b"),
               "--n-boot", "10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    coverage = pl.read_csv(tmp_path / "b" / "coverage.csv")
    salt = coverage.filter(pl.col("model") == "salt")
    assert salt["covered"].to_list() == salt["conditions"].to_list()
    proc = lpm("benchmark", "--store", str(tmp_path / "s"), "--split", "combination",
               "--models", "precomputed", "--param", "precomputed.path=x.csv",
               "--out", str(tmp_path / "c"))  # fmt: skip
    assert proc.returncode == 2
    assert "does not take doses/times given per member" in error_line(proc)


def test_cli_predicts_rows_written_with_per_member_doses(tmp_path: Path) -> None:
    csv = write_combination_csv(tmp_path / "screen.csv")
    proc = lpm("ingest", str(csv), "--out", str(tmp_path / "s"), "--perturbation-type", "compound",
               "--dataset", "screen")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = lpm(
        "train", "--store", str(tmp_path / "s"), "--model", "salt", "--out", str(tmp_path / "m")
    )
    assert proc.returncode == 0, proc.stderr
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "context,perturbation,readout,dose\n"
        "screen/A549,compound:drugB+compound:drugA,G0,6+1.5\n"  # drugB at 6, drugA at 1.5
        "screen/A549,compound:drugA,G0,3\n"
    )
    out = tmp_path / "pred.parquet"
    proc = lpm("predict", "--model", str(tmp_path / "m"), "--rows", str(rows), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    pred = pl.read_parquet(out)
    effects = single_effects()
    want = effects[("A549", "drugA", 1.5)][0] + effects[("A549", "drugB", 6.0)][0]
    assert pred[S.PERTURBATION].to_list() == [AB, "compound:drugA"]
    assert pred[S.MEMBER_DOSE].to_list() == [[1.5, 6.0], None]
    assert pred["prediction"].to_list() == [np.float32(want), effects[("A549", "drugA", 3.0)][0]]


def test_lpm_streams_member_doses_from_a_store(tmp_path: Path) -> None:
    from lpm.models.source import RowSource

    csv = write_combination_csv(tmp_path / "screen.csv")
    store = ingest([csv], tmp_path / "s", options=IngestOptions(perturbation_type="compound"))
    model = make_model("lpm_fast", SMALL, seed=0).fit_source(RowSource(stores=[store]))
    rows = store.read()
    a, b = _at(rows, [1.5, 6.0]), _at(rows, [6.0, 1.5])
    assert model.models_member_doses
    assert np.abs(model.predict(a) - model.predict(b)).max() > 1e-3
