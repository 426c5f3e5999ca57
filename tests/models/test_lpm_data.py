"""How the LPM reads its rows: a store streamed in row groups gives up a hashed share of its
rows for early stopping (the same ones in every pass), and fast-mode batches hold whole
profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data import schema as S
from lpm.data.store import open_store, write_store

pytest.importorskip("torch")
from lpm.models.lpm.rows import RowSource, StreamingRows, Vocab


def _rows(seed: int = 3) -> pl.DataFrame:
    """3 contexts × 40 perturbations × 25 readouts of low-rank deltas."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(40, 2)), rng.normal(size=(2, 25))
    records = [
        (f"toy/{c}", f"CRISPRi:G{i}", f"R{j}", float(x))
        for c in "ABC"
        for i, row in enumerate(u @ v + 0.1 * rng.normal(size=(40, 25)))
        for j, x in enumerate(row)
    ]
    return pl.DataFrame(
        records, schema=[S.CONTEXT, S.PERTURBATION, S.READOUT, S.VALUE], orient="row"
    )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = _rows()
    out = tmp_path_factory.mktemp("holdout") / "store"
    write_store(rows, out, row_group_size=700)  # many row groups: profiles straddle them
    return out


def test_a_store_holdout_takes_the_same_rows_every_pass_and_keeps_every_perturbation(
    store_path: Path,
) -> None:
    store = open_store(store_path)
    train, val = RowSource(stores=[store]).split_holdout(seed=5, fraction=0.2)
    t1, v1 = pl.concat(list(train)), pl.concat(list(val))
    assert t1.equals(pl.concat(list(train)))
    assert t1.height + v1.height == store.n_rows
    key = [S.CONTEXT, S.PERTURBATION, S.READOUT]
    assert t1.join(v1, on=key, how="semi").height == 0
    assert 0.15 < v1.height / store.n_rows < 0.25  # about the asked share of 3,000 rows
    assert set(v1[S.PERTURBATION]) <= set(t1[S.PERTURBATION])
    _, other = RowSource(stores=[store]).split_holdout(seed=6, fraction=0.2)
    assert not pl.concat(list(other)).equals(v1)


def test_a_store_fit_without_validation_rows_stops_early_on_held_out_rows(
    store_path: Path,
) -> None:
    pytest.importorskip("lightning")
    from lpm.models.registry import get_model

    small = {"embedding_dim": 8, "hidden": [16], "batch_size": 256, "max_epochs": 3}
    model = get_model("lpm_fast", val_fraction=0.2, seed=0, **small)
    model.fit_source(RowSource(stores=[open_store(store_path)]))
    assert np.isfinite(model.history_[0]["val_loss"])
    unchecked = get_model("lpm_fast", val_fraction=0.0, seed=0, **small)
    unchecked.fit_source(RowSource(stores=[open_store(store_path)]))
    assert unchecked.history_[0].get("val_loss") is None


def test_fast_batches_hold_whole_profiles(store_path: Path) -> None:
    source = RowSource(stores=[open_store(store_path)])
    vocab = Vocab.build(source)
    data = StreamingRows(source, vocab, fast=True, batch_values=10, batch_profiles=4, seed=0)
    batches = list(data)
    n_values = sum(int(b["value"].shape[0]) for b in batches)
    assert n_values == open_store(store_path).n_rows
    for b in batches:
        n_prof = int(b["profile_context"].shape[0])
        assert n_prof <= 4
        counts = np.bincount(b["row_profile"].numpy(), minlength=n_prof)
        assert counts.min() > 0  # every profile in a batch brings its values


def test_fast_mode_scores_a_sparse_panel_as_the_dense_product_does(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import lpm.models.lpm.network as net_module
    from lpm.models.lpm.network import LPMNetwork, NetworkConfig
    from lpm.models.lpm.rows import code_rows, profile_batches

    rows = open_store(store_path).read()
    vocab = Vocab.build(RowSource(frame=rows))
    sparse = rows.sample(fraction=0.1, seed=0)  # a tenth of each profile's readouts
    cfg = NetworkConfig(
        n_contexts=len(vocab.contexts),
        n_readouts=len(vocab.readouts),
        n_members=len(vocab.members),
        embedding_dim=8,
        hidden=(16,),
        dropout=0.0,
        fast=True,
        combine="mean",
    )
    torch.manual_seed(0)
    net = LPMNetwork(cfg).eval()
    batch = next(profile_batches(code_rows(sparse, vocab), 50))
    batch["perturbation_members"] = torch.from_numpy(vocab.member_matrix)
    with torch.no_grad():
        monkeypatch.setattr(net_module, "SPARSE_PANEL", 0)  # always the gathered dots
        gathered = net.forward_rows(batch)
        monkeypatch.setattr(net_module, "SPARSE_PANEL", 1_000_000)  # always the dense product
        dense = net.forward_rows(batch)
    torch.testing.assert_close(gathered, dense)
