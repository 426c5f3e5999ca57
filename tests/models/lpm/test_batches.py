"""LPM batches: fast-mode batches hold whole profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lpm.data.store import open_store
from lpm.models.source import RowSource

pytest.importorskip("torch")
from lpm.models.lpm.batches import StreamingRows
from lpm.models.lpm.vocab import Vocab


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
