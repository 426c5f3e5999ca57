"""Mechanism of action by similarity (``lpm.tasks.moa``): the measured baseline ranks a
compound's own target first, orientation of gain-of-function candidates, the model's embedding
and predicted-profile rankings (mechanics), the registered task, bad input."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.models.registry import get_model
from lpm.tasks import moa
from lpm.tasks.moa import (
    METHODS,
    RANKING_COLUMNS,
    SIMILARITY_COLUMNS,
    MechanismTask,
    embedding_similarity,
    measured_profile_similarity,
    predicted_profile_similarity,
    rank_moa,
    reference_doses,
)
from lpm.tasks.moa_scores import score_targets
from lpm.tasks.registry import get_task
from tests.conftest import SMALL_LPM

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

N_READOUTS = 30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def moa_frame(seed: int = 0) -> pl.DataFrame:
    """Compound X looks like CRISPRi:T (and like the mirror of CRISPRa:T); Y like CRISPRi:U.

    Two contexts; compounds at two doses (the top dose carries the signal), genetic singles
    without dose; a pair and the control are present but never ranked.
    """
    rng = np.random.default_rng(seed)
    base = {g: rng.normal(size=N_READOUTS) for g in ("T", "U", "V", "W")}
    profiles = {
        "CRISPRi:T": base["T"],
        "CRISPRi:U": base["U"],
        "CRISPRi:V": base["V"],
        "CRISPRa:T": -base["T"],
        "CRISPRi:W": base["W"],
        "CRISPRi:T+CRISPRi:U": base["T"] + base["U"],
        "control": np.zeros(N_READOUTS),
    }
    rows = []
    for c, ctx in enumerate(("toy/A", "toy/B")):
        shift = 0.05 * rng.normal(size=N_READOUTS)
        for p, v in profiles.items():
            noisy = v + shift + 0.1 * rng.normal(size=N_READOUTS)
            rows += [(ctx, p, f"R{j}", float(x), None) for j, x in enumerate(noisy)]
        for name, gene in (("X", "T"), ("Y", "U")):
            for dose, scale in ((0.1, 0.0), (10.0, 1.0)):
                v = scale * base[gene] + 0.1 * rng.normal(size=N_READOUTS) + 0.01 * c
                rows += [
                    (ctx, f"compound:{name}", f"R{j}", float(x), dose) for j, x in enumerate(v)
                ]
    return pl.DataFrame(
        rows,
        schema={
            "context": pl.String,
            "perturbation": pl.String,
            "readout": pl.String,
            "value": pl.Float64,
            "dose": pl.Float32,
        },
        orient="row",
    )


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return moa_frame()


@pytest.fixture(scope="module")
def fitted(frame: pl.DataFrame) -> Any:
    return get_model("lpm_fast", **SMALL_LPM, max_epochs=3, val_fraction=0, seed=0).fit(frame)


def _top(table: pl.DataFrame, query: str) -> str:
    return str(
        table.filter(pl.col("query") == query).sort("score", descending=True)["candidate"][0]
    )


# ---- similarities -------------------------------------------------------------------------------
def test_measured_profile_ranks_own_target_first(frame: pl.DataFrame) -> None:
    t = measured_profile_similarity(frame)
    assert t.columns == list(SIMILARITY_COLUMNS)
    assert set(t["query"]) == {"compound:X", "compound:Y"}  # only compounds are queries
    assert "control" not in set(t["candidate"]) and not t["candidate"].str.contains("\\+").any()
    assert (t["query"] != t["candidate"]).all()
    assert _top(t, "compound:X") in {"CRISPRi:T", "CRISPRa:T"}
    assert _top(t, "compound:Y") == "CRISPRi:U"
    x = t.filter(pl.col("query") == "compound:X")
    kd = x.filter(pl.col("candidate") == "CRISPRi:T").row(0, named=True)
    up = x.filter(pl.col("candidate") == "CRISPRa:T").row(0, named=True)
    assert kd["similarity"] > 0.9 and kd["score"] == kd["similarity"]
    # an activation of the target is the mirror image: negative similarity, positive score
    assert up["similarity"] < -0.9 and up["score"] == -up["similarity"]
    assert t["similarity"].is_between(-1, 1).all()


def test_measured_profile_dose_choice_matters(frame: pl.DataFrame) -> None:
    top = measured_profile_similarity(frame, dose="max")
    mean = measured_profile_similarity(frame, dose="mean")
    pick = (pl.col("query") == "compound:X") & (pl.col("candidate") == "CRISPRi:T")
    assert top.filter(pick)["similarity"][0] > mean.filter(pick)["similarity"][0] - 1e-9
    with pytest.raises(LpmInputError, match="max"):
        measured_profile_similarity(frame, dose="low")


def test_measured_profile_needs_overlap() -> None:
    rows = [("a/A", "compound:X", f"R{j}", float(j % 7)) for j in range(25)]
    rows += [("b/B", "CRISPRi:T", f"S{j}", float(j % 5)) for j in range(25)]  # no shared readout
    rows += [("b/B", "CRISPRi:U", f"R{j}", float(j % 3)) for j in range(15)]  # 15 shared
    t = pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")
    assert measured_profile_similarity(t).height == 0
    assert set(measured_profile_similarity(t, min_overlap=10)["candidate"]) == {"CRISPRi:U"}


def test_embedding_similarity_mechanics(fitted: Any) -> None:
    t = embedding_similarity(fitted)
    assert t.columns == list(SIMILARITY_COLUMNS)
    assert set(t["query"]) == {"compound:X", "compound:Y"}
    singles = {"CRISPRi:T", "CRISPRi:U", "CRISPRi:V", "CRISPRi:W", "CRISPRa:T"}
    assert set(t["candidate"]) == singles | {"compound:X", "compound:Y"}
    assert t.height == 2 * 6 and t["score"].is_finite().all()
    assert t["similarity"].is_between(-1, 1).all()


def test_predicted_profile_mechanics(frame: pl.DataFrame, fitted: Any) -> None:
    assert reference_doses(frame) == {"compound:X": 10.0, "compound:Y": 10.0}
    t = predicted_profile_similarity(fitted, frame=frame)
    assert t.columns == list(SIMILARITY_COLUMNS)
    assert t.height == 2 * 6 and t["score"].is_finite().all()
    same = predicted_profile_similarity(
        fitted, context="toy/B", readouts=["R0", "R1", "R2"], dose=10.0
    )
    assert same.height == 2 * 6
    with pytest.raises(LpmInputError, match="context"):
        predicted_profile_similarity(fitted, frame=frame, context="toy/Z")
    with pytest.raises(LpmInputError, match="dose"):
        predicted_profile_similarity(fitted, context="toy/A")


def test_rank_moa_table(frame: pl.DataFrame, fitted: Any) -> None:
    r = rank_moa(frame, model=fitted)
    assert r.columns == list(RANKING_COLUMNS)
    assert tuple(r["method"].unique(maintain_order=True)) == METHODS
    firsts = r.filter(pl.col("rank") == 1)
    assert firsts.group_by("method", "query").len()["len"].max() == 1  # no ties here
    best = r.filter((pl.col("method") == "measured_profile") & (pl.col("query") == "compound:Y"))
    assert best.sort("rank")["candidate"][0] == "CRISPRi:U"
    assert rank_moa(frame)["method"].unique().to_list() == ["measured_profile"]
    with pytest.raises(LpmInputError, match="model"):
        rank_moa(frame, methods=["embedding"])


# ---- the task ----------------------------------------------------------------------------------
def test_the_registered_task_is_rank_moa(frame: pl.DataFrame, fitted: Any) -> None:
    task = get_task("moa", methods=["measured_profile"])
    assert isinstance(task, MechanismTask) and task.get_params()["dose"] == "max"
    assert task.run(frame).equals(rank_moa(frame, methods=["measured_profile"]))
    assert get_task("moa").run(frame, model=fitted).equals(rank_moa(frame, model=fitted))


def test_bad_input(frame: pl.DataFrame) -> None:
    genetic = frame.filter(~pl.col("perturbation").str.starts_with("compound:"))
    with pytest.raises(LpmInputError, match="no single compound"):
        measured_profile_similarity(genetic)
    compounds = frame.filter(pl.col("perturbation").str.starts_with("compound:"))
    r = rank_moa(compounds)
    with pytest.raises(LpmInputError, match="no genetic perturbation"):
        score_targets(r, {"X": {"T"}})


def test_doctests() -> None:
    result = doctest.testmod(moa, extraglobs={"pl": pl, "np": np})
    assert result.attempted > 0 and result.failed == 0
