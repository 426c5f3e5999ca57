"""Rows as integer codes: symbols by the vocabulary, dose and time as log10 features, one
condition id per (context, perturbation, dose, time)."""

from __future__ import annotations

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.models.lpm.rows import code_rows
from lpm.models.lpm.vocab import Vocab
from lpm.models.source import RowSource


def _rows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            S.CONTEXT: ["c1", "c1", "c1", "c2"],
            S.PERTURBATION: ["compound:x", "compound:x", "compound:x", "compound:x+compound:y"],
            S.READOUT: ["g1", "g2", "g1", "g1"],
            S.VALUE: [0.5, -0.5, 1.0, 2.0],
            S.DOSE: [1.0, 1.0, 10.0, None],
            S.READOUT_TYPE: ["delta", "delta", "binary", "delta"],
        },
        schema_overrides={S.DOSE: pl.Float32},
    )


def test_codes_follow_the_vocabulary_and_combinations_their_members() -> None:
    rows = _rows()
    vocab = Vocab.build(RowSource(frame=rows))
    coded = code_rows(rows, vocab)
    assert len(coded) == 4
    assert [vocab.contexts[i] for i in coded.context] == rows[S.CONTEXT].to_list()
    assert [vocab.readouts[i] for i in coded.readout] == rows[S.READOUT].to_list()
    pair = coded.members[3]
    assert sorted(vocab.members[i] for i in pair if i >= 0) == ["compound:x", "compound:y"]
    np.testing.assert_array_equal(coded.binary, [False, False, True, False])
    np.testing.assert_allclose(coded.value, [0.5, -0.5, 1.0, 2.0])


def test_dose_is_log10_with_a_presence_flag_and_splits_conditions() -> None:
    rows = _rows()
    coded = code_rows(rows, Vocab.build(RowSource(frame=rows)))
    np.testing.assert_allclose(coded.dose[:, 0], [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(coded.dose[:, 1], [1, 1, 1, 0])
    assert coded.condition[0] == coded.condition[1]  # same context, perturbation and dose
    assert len({int(c) for c in coded.condition}) == 3
    taken = coded.take(np.array([3, 0]))
    np.testing.assert_array_equal(taken.value, [2.0, 0.5])
