"""Learned LPM embeddings (``lpm.tasks.embeddings``): shapes and obs, combinations as the
network combines them, one ensemble member at a time, a clear error for other models, the
registered task's tidy table and the AnnData made from it."""

from __future__ import annotations

import copy
import doctest
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.models.registry import get_model
from lpm.priors.mechanisms import load_mechanism_annotations
from lpm.tasks import embeddings
from lpm.tasks.embeddings import (
    EMBEDDING,
    KINDS,
    EmbeddingTask,
    context_embeddings,
    embedding_anndata,
    perturbation_embeddings,
    readout_embeddings,
)
from lpm.tasks.registry import get_task
from tests.conftest import SMALL_LPM

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
ad = pytest.importorskip("anndata")

SINGLES = [f"CRISPRi:G{i}" for i in range(5)]
PAIR = "CRISPRi:G0+CRISPRi:G1"
#: G5 is trained only inside this combination: it is embeddable, but not seen alone.
MIXED = "CRISPRi:G5+compound:trametinib"
COMPOUND = "compound:trametinib"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rows(seed: int = 0) -> pl.DataFrame:
    """2 contexts × (5 CRISPRi singles, a pair, a compound, a mixed pair, control) × 6 readouts."""
    rng = np.random.default_rng(seed)
    perts = [*SINGLES, PAIR, COMPOUND, MIXED, "control"]
    effect = {p: rng.normal(size=6) for p in perts}
    rows = []
    for c in ("toy/A", "toy/B"):
        shift = 0.3 * rng.normal(size=6)
        for p in perts:
            vals = effect[p] + shift
            rows += [(c, p, f"R{j}", float(v)) for j, v in enumerate(vals)]
    return pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")


@pytest.fixture(scope="module")
def fitted() -> Any:
    """A two-member ``lpm_fast`` ensemble (members differ: seeds 0 and 1)."""
    model = get_model("lpm_fast", **SMALL_LPM, max_epochs=3, val_fraction=0, ensemble=2)
    return model.fit(_rows())


@pytest.fixture(scope="module")
def saved(fitted: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fitted.save(tmp_path_factory.mktemp("model") / "lpm_fast")


# ---- perturbations ------------------------------------------------------------------------------
def test_perturbation_embeddings_have_one_row_per_perturbation_and_typed_obs(fitted: Any) -> None:
    emb = perturbation_embeddings(fitted)
    expected = sorted({*SINGLES, PAIR, COMPOUND, MIXED, "control", "CRISPRi:G5"})
    assert list(emb.obs_names) == expected
    assert emb.shape == (len(expected), SMALL_LPM["embedding_dim"])
    assert emb.X.dtype == np.float32
    assert list(emb.obs.columns) == ["perturbation_type", "target", "n_members", "in_training"]
    obs = emb.obs
    assert obs.loc["CRISPRi:G2", "perturbation_type"] == "CRISPRi"
    assert obs.loc["CRISPRi:G2", "target"] == "G2"
    assert obs.loc[COMPOUND, ["perturbation_type", "target"]].tolist() == ["compound", "trametinib"]
    assert obs.loc[PAIR, ["perturbation_type", "target"]].tolist() == ["combination", "G0+G1"]
    assert obs.loc["control", "perturbation_type"] == "control"
    assert obs["target"].isna().tolist() == [n == "control" for n in expected]
    assert obs.loc[PAIR, "n_members"] == 2 and obs.loc["CRISPRi:G3", "n_members"] == 1
    assert not obs.loc["CRISPRi:G5", "in_training"] and obs.loc[MIXED, "in_training"]
    info = emb.uns["lpm_embedding"]
    assert info["model_name"] == "lpm_fast" and info["mode"] == "fast"
    assert (info["member"], info["n_ensemble"], info["combine"]) == (0, 2, "mean")
    assert "not aligned" in info["note"]


def test_a_combination_is_the_mean_of_its_members_as_the_network_computes_it(fitted: Any) -> None:
    emb = perturbation_embeddings(fitted)
    x = dict(zip(emb.obs_names, np.asarray(emb.X), strict=True))
    np.testing.assert_allclose(x[PAIR], (x["CRISPRi:G0"] + x["CRISPRi:G1"]) / 2, rtol=1e-6)
    np.testing.assert_allclose(x[MIXED], (x["CRISPRi:G5"] + x[COMPOUND]) / 2, rtol=1e-6)
    # the network's own combination of every perturbation it was trained on
    vocab = fitted.vocab_
    net = fitted._networks()[0]
    with torch.no_grad():
        own = net.perturbation(torch.from_numpy(vocab.member_matrix)).numpy()
    np.testing.assert_allclose(emb[vocab.perturbations].X, own, rtol=1e-5, atol=1e-7)
    # with combine=sum the sum
    summed = copy.copy(fitted)
    summed.network_config_ = {**fitted.network_config_, "combine": "sum"}
    xs = dict(zip(emb.obs_names, np.asarray(perturbation_embeddings(summed).X), strict=True))
    np.testing.assert_allclose(xs[PAIR], x["CRISPRi:G0"] + x["CRISPRi:G1"], rtol=1e-6)


def test_one_ensemble_member_at_a_time(fitted: Any, saved: Path) -> None:
    first = perturbation_embeddings(fitted)
    second = perturbation_embeddings(saved, member=1)
    assert second.uns["lpm_embedding"]["member"] == 1
    assert second.uns["lpm_embedding"]["model_path"] == str(saved)
    single = list(second.obs_names).index("CRISPRi:G3")
    row = fitted.vocab_.member_index["CRISPRi:G3"]
    np.testing.assert_array_equal(second.X[single], fitted.states_[1]["member.weight"][row])
    assert not np.allclose(first.X, second.X), "members are trained from different seeds"
    with pytest.raises(LpmInputError, match=r"member 2 does not exist.*2 member\(s\)"):
        perturbation_embeddings(fitted, member=2)


def test_mechanism_annotations_match_names_genes_and_combinations(fitted: Any) -> None:
    emb = perturbation_embeddings(
        fitted, annotations={"Trametinib": "MEK inhibitor", "G0": "kinase", "G1": "phosphatase"}
    )
    mech = emb.obs["mechanism"]
    assert mech[COMPOUND] == "MEK inhibitor", "names match ignoring case"
    assert mech["CRISPRi:G0"] == "kinase"
    assert mech[PAIR] == "kinase+phosphatase"
    assert mech.isna()[MIXED], "a combination is labelled only when every member is"
    assert mech.isna()["CRISPRi:G2"] and mech.isna()["control"]


def test_annotation_file_reads_name_and_mechanism_or_moa_columns(tmp_path: Path) -> None:
    drh = tmp_path / "drh.txt"
    drh.write_text(
        "!comment line\npert_iname\tclinical_phase\tmoa\ttarget\n"
        "trametinib\tLaunched\tMEK inhibitor\tMAP2K1|MAP2K2\n"
        "trametinib\tLaunched\tkinase inhibitor\tMAP2K1\n"
        "nothing\tPreclinical\t\t\n"
    )
    assert load_mechanism_annotations(drh) == {"trametinib": "MEK inhibitor|kinase inhibitor"}
    plain = tmp_path / "plain.tsv"
    plain.write_text("name\tmechanism\nMAPK1\tMAPK signalling\n")
    assert load_mechanism_annotations(plain) == {"MAPK1": "MAPK signalling"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nx\ty\n")
    with pytest.raises(LpmInputError, match="name column"):
        load_mechanism_annotations(bad)


# ---- contexts and readouts ----------------------------------------------------------------------
def test_context_and_readout_embeddings(fitted: Any) -> None:
    ctx = context_embeddings(fitted, member=1)
    assert list(ctx.obs_names) == ["toy/A", "toy/B"]
    assert ctx.shape == (2, SMALL_LPM["embedding_dim"])
    assert ctx.obs["dataset"].tolist() == ["toy", "toy"]
    assert ctx.obs["cell_line"].tolist() == ["A", "B"]
    np.testing.assert_array_equal(ctx.X, fitted.states_[1]["context.weight"])
    read = readout_embeddings(fitted)
    assert list(read.obs_names) == [f"R{j}" for j in range(6)]
    assert read.shape == (6, SMALL_LPM["embedding_dim"])
    np.testing.assert_array_equal(read.obs["bias"], fitted.states_[0]["readout_bias"])
    assert read.uns["lpm_embedding"]["kind"] == "readout"


def test_exact_mode_has_the_same_embeddings_and_no_readout_bias() -> None:
    exact = get_model("lpm", **SMALL_LPM, max_epochs=1, val_fraction=0).fit(_rows())
    perts = perturbation_embeddings(exact)
    assert perts.uns["lpm_embedding"]["mode"] == "exact" and perts.n_obs == 10
    read = readout_embeddings(exact)
    assert read.shape == (6, SMALL_LPM["embedding_dim"]) and "bias" not in read.obs


def test_a_model_without_embeddings_is_a_clear_error(tmp_path: Path) -> None:
    linear = get_model("linear").fit(_rows())
    with pytest.raises(LpmInputError, match=r"'linear' has no learned embeddings.*lpm, lpm_fast"):
        perturbation_embeddings(linear)
    folder = linear.save(tmp_path / "linear")
    with pytest.raises(LpmInputError, match=f"{folder}: model 'linear' has no learned"):
        get_task("embed").run(model=folder)


def test_measured_contexts_and_doses_are_added_to_the_table(fitted: Any) -> None:
    rows = _rows().with_columns(
        dose=pl.when(pl.col("perturbation") == COMPOUND)
        .then(pl.col("readout").str.len_chars().cast(pl.Float64) / 10)
        .otherwise(None)
    )
    rows = pl.concat(
        [rows, rows.filter(pl.col("perturbation") == COMPOUND).with_columns(dose=pl.lit(5.0))]
    )
    table = get_task("embed").run(rows, model=fitted)
    assert table.columns[-6:] == [
        "n_contexts", "n_doses", "n_values", "dose_min", "dose_max", EMBEDDING
    ]  # fmt: skip
    obs = {r["perturbation"]: r for r in table.drop(EMBEDDING).iter_rows(named=True)}
    assert obs[COMPOUND]["n_doses"] == 2 and obs[COMPOUND]["dose_max"] == 5.0
    assert obs[SINGLES[0]]["n_doses"] == 0 and math.isnan(obs[SINGLES[0]]["dose_min"])
    assert obs[SINGLES[0]]["n_contexts"] == 2
    assert obs["CRISPRi:G5"]["n_values"] == 0, "only seen inside a combination"
    assert table.drop(table.columns[-6:-1]).equals(get_task("embed").run(model=fitted))


def test_the_task_table_is_the_anndata(fitted: Any) -> None:
    labels = {"Trametinib": "MEK inhibitor"}
    for kind, build in (
        ("perturbation", lambda: perturbation_embeddings(fitted, member=1, annotations=labels)),
        ("context", lambda: context_embeddings(fitted, member=1)),
        ("readout", lambda: readout_embeddings(fitted, member=1)),
    ):
        task = get_task("embed", kind=kind, member=1, annotations=labels)
        assert isinstance(task, EmbeddingTask) and not task.needs_data()
        table = task.run(model=fitted)
        assert table.columns[0] == KINDS[kind] and table[EMBEDDING].dtype.inner == pl.Float32
        adata = build()
        assert table[KINDS[kind]].to_list() == list(adata.obs_names)
        np.testing.assert_array_equal(table[EMBEDDING].to_numpy(), adata.X)
        again = embedding_anndata(table, uns=adata.uns)
        assert again.obs.equals(adata.obs) and again.uns == adata.uns
    with pytest.raises(LpmInputError, match="unknown kind 'gene'"):
        get_task("embed", kind="gene")
    with pytest.raises(LpmInputError, match="needs a fitted model"):
        get_task("embed").run()


def test_docstring_examples() -> None:
    result = doctest.testmod(embeddings, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
