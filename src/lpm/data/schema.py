"""The one long table every dataset becomes: column names, types and symbol rules defined once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import pyarrow as pa

SCHEMA_VERSION: Final = 1

CONTEXT: Final = "context"
PERTURBATION: Final = "perturbation"
READOUT: Final = "readout"
VALUE: Final = "value"
DOSE: Final = "dose"
TIME: Final = "time"
N_CELLS: Final = "n_cells"
REPLICATE: Final = "replicate"
DATASET: Final = "dataset"
READOUT_TYPE: Final = "readout_type"
#: One dose (time) per member of a combination, in the order of the members in its symbol;
#: set only where the source gave them per member (``1.5+6``), and then ``dose`` (``time``) is
#: empty. A store without such rows has no such columns.
MEMBER_DOSE: Final = "member_dose"
MEMBER_TIME: Final = "member_time"
MEMBER_COLUMNS: Final = (MEMBER_DOSE, MEMBER_TIME)

KEY_COLUMNS: Final = (CONTEXT, PERTURBATION, READOUT)
REQUIRED_COLUMNS: Final = (*KEY_COLUMNS, VALUE)
OPTIONAL_COLUMNS: Final = (
    DOSE, TIME, N_CELLS, REPLICATE, DATASET, READOUT_TYPE, MEMBER_DOSE, MEMBER_TIME
)  # fmt: skip

#: The perturbation symbol of a context's unperturbed state.
CONTROL: Final = "control"

#: What a value means; binary labels are scored with AUROC/AUPRC, the rest as continuous deltas.
READOUT_TYPES: Final = ("delta", "zscore", "binary", "viability", "log_expression")
BINARY: Final = "binary"

ARROW_SCHEMA: Final = pa.schema(
    [
        pa.field(CONTEXT, pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field(PERTURBATION, pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field(READOUT, pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field(VALUE, pa.float32(), nullable=False),
        pa.field(DOSE, pa.float32()),
        pa.field(TIME, pa.float32()),
        pa.field(N_CELLS, pa.int32()),
        pa.field(REPLICATE, pa.int32()),
        pa.field(DATASET, pa.dictionary(pa.int32(), pa.string())),
        pa.field(READOUT_TYPE, pa.dictionary(pa.int32(), pa.string())),
        pa.field(MEMBER_DOSE, pa.list_(pa.float32())),
        pa.field(MEMBER_TIME, pa.list_(pa.float32())),
    ]
)

#: Columns that, with context and perturbation, identify one measured profile (a condition).
CONDITION_COLUMNS: Final = (CONTEXT, PERTURBATION, DOSE, TIME, MEMBER_DOSE, MEMBER_TIME, REPLICATE)

#: Context ids follow one rule: ``<dataset>/<cell line>``, the cell line spelled in upper case,
#: so the same line measured by two datasets (two technologies) stays two contexts.
CONTEXT_SEPARATOR: Final = "/"


def context_id(dataset: str, cell_line: str) -> str:
    """The context id of a cell line measured in a dataset (the written rule for contexts)."""
    return f"{dataset}{CONTEXT_SEPARATOR}{cell_line.upper()}"


def condition_columns(columns: Iterable[str]) -> list[str]:
    """The columns among ``columns`` that identify one profile: context, perturbation, dose/time/replicate."""
    present = set(columns)
    return [c for c in CONDITION_COLUMNS if c in present]


PREDICTION = "prediction"


#: Spread of an ensemble's members (standard deviation), where the model has one.
PREDICTION_SD = "prediction_sd"


#: True where a combination model returned its fallback (Peper: Salt's sum of the singles).
FALLBACK = "fallback"
