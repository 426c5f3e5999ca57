"""``lpm explain``: fit (or load) the models, explain held-out rows, write one output folder."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from lpm._utils.atomic import atomic_dir, check_output
from lpm.data import schema as S
from lpm.errors import LpmInputError
from lpm.pl.explain import plot_importance
from lpm.pl.save import save_png
from lpm.reports.discovery import EXPLAIN_FIGURE_FILE, EXPLAIN_SUMMARY_FILE, explain_lines
from lpm.runs._inputs import read_rows
from lpm.tasks.base import fitted_model
from lpm.tasks.explain import (
    AME_ATTENTION,
    POSTHOC,
    check_rows,
    context_vs_perturbation,
    explainable,
    importance_by,
    importance_shares,
    inputs_of,
    per_perturbation_scores,
    sanity_check,
)
from lpm.tasks.registry import get_task

if TYPE_CHECKING:
    from lpm.models.base import PerturbationModel

ROWS_FILE: Final = "importance_rows.parquet"
BY_PERTURBATION_FILE: Final = "importance_by_perturbation.csv"
BY_CONTEXT_FILE: Final = "importance_by_context.csv"
FIGURE_FILE: Final = EXPLAIN_FIGURE_FILE
SUMMARY_FILE: Final = EXPLAIN_SUMMARY_FILE
#: Every file :func:`run_explain` writes.
FILES: Final = (ROWS_FILE, BY_PERTURBATION_FILE, BY_CONTEXT_FILE, FIGURE_FILE, SUMMARY_FILE)


@dataclass
class ExplainResult:
    """What :func:`run_explain` computed and wrote."""

    rows: pl.DataFrame
    by_perturbation: pl.DataFrame
    by_context: pl.DataFrame
    summary: dict[str, Any]
    out: Path
    files: list[Path] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([*explain_lines(self.summary), f"wrote {self.out}"])


def _load(data: pl.DataFrame | str | Path, contexts: Sequence[str] | None) -> pl.DataFrame:
    frame, store = read_rows(data)
    where = str(store) if store is not None else None
    if contexts is not None:
        present = set(frame[S.CONTEXT].cast(pl.String).unique().to_list())
        missing = sorted(set(contexts) - present)
        if missing:
            raise LpmInputError(
                where,
                f"no context {', '.join(missing)} in column {S.CONTEXT}; "
                f"contexts are {', '.join(sorted(present)[:10])}",
            )
        frame = frame.filter(pl.col(S.CONTEXT).is_in(list(contexts)))
    check_rows(frame, where=where)
    return frame


def _model_name(model: PerturbationModel) -> str:
    return getattr(model, "name", "") or type(model).__name__


@dataclass
class _Models:
    fitted: PerturbationModel
    description: str
    ame: PerturbationModel | None
    timings: dict[str, float]


def _models(
    train: pl.DataFrame,
    model: PerturbationModel | str | Path | None,
    *,
    train_ame: bool,
    ame_max_rows: int | None,
    lpm_params: Mapping[str, Any] | None,
    ame_params: Mapping[str, Any] | None,
    seed: int,
) -> _Models:
    """The model explained (fitted here on ``train`` unless given) and the AME beside it."""
    from lpm.models.registry import make_model

    timings: dict[str, float] = {}
    if model is None:
        t = time.perf_counter()
        fitted = make_model("lpm_fast", lpm_params, seed=seed).fit(train)
        timings["fit_lpm_s"] = time.perf_counter() - t
        desc = f"lpm_fast fitted here on {train.height} rows"
    else:
        fitted = fitted_model(model)
        desc = str(model) if isinstance(model, str | Path) else _model_name(model)
    explainable(fitted)
    ame = None
    if train_ame:
        t = time.perf_counter()
        ame_train = train
        if ame_max_rows is not None and train.height > ame_max_rows:
            # the AME trains row by row (about 10 min for 8 epochs of 3 M rows on two cores):
            # a seeded sample of the training rows keeps it to a minute or two
            pick = np.random.default_rng([seed, 7]).choice(train.height, ame_max_rows, False)
            ame_train = train[np.sort(pick)]
        ame = make_model("lpm_ame", ame_params, seed=seed).fit(ame_train)
        timings["fit_ame_s"] = time.perf_counter() - t
    return _Models(fitted, desc, ame, timings)


def _explained_rows(
    test: pl.DataFrame, models: _Models, *, max_rows: int | None, seed: int
) -> pl.DataFrame:
    """Held-out rows every model can predict, a seeded sample of ``max_rows`` at most."""
    ok = models.fitted.supported(test)
    if models.ame is not None:
        ok &= models.ame.supported(test)
    rows = test.filter(pl.Series(ok))
    if rows.height == 0:
        raise LpmInputError(None, "no held-out row the model(s) can predict")
    if max_rows is not None and rows.height > max_rows:
        pick = np.sort(np.random.default_rng([seed, 11]).choice(rows.height, max_rows, False))
        rows = rows[pick]
    return rows


def _summary(parts: list[pl.DataFrame], tables: _Tables, models: _Models) -> dict[str, Any]:
    shares = importance_shares(importance_by(tables.table, by=None))
    return {
        "model": models.description,
        "inputs": {m: inputs_of(p) for m, p in zip((POSTHOC, AME_ATTENTION), parts, strict=False)},
        "shares": shares,
        "shares_by_context": {
            str(c): importance_shares(g)
            for (c,), g in tables.by_context.group_by(S.CONTEXT, maintain_order=True)
        },
        "context_vs_perturbation": {m: context_vs_perturbation(v) for m, v in shares.items()},
        "test_mse": {
            "lpm": float(parts[0]["error"].mean()),  # type: ignore[arg-type]
            "ame": float(parts[1]["error"].mean()) if models.ame is not None else None,  # type: ignore[arg-type]
            "n_test_rows": parts[0].height,
        },
        "sanity_check": tables.sanity,
        "ame_history": getattr(models.ame, "history_", None),
        "seconds": models.timings,
    }


def _held_out(
    frame: pl.DataFrame, *, test_fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A seeded ``test_fraction`` of whole profiles held out, and the rest."""
    from lpm.data.holdout import carve_validation

    train, test = carve_validation(frame, fraction=test_fraction, seed=seed)
    if test is None:
        raise LpmInputError(None, "too few profiles to hold out a test set")
    return train, test


def _importance(rows: pl.DataFrame, models: _Models) -> list[pl.DataFrame]:
    """The ``explain`` task's per-row table of the model (post hoc) and the AME (attention)."""
    t = time.perf_counter()
    parts = [get_task("explain").run(rows, model=models.fitted)]
    if models.ame is not None:
        parts.append(get_task("explain", method="attention").run(rows, model=models.ame))
    models.timings["explain_s"] = time.perf_counter() - t
    return parts


def _options(
    data: pl.DataFrame | str | Path,
    *,
    model: str,
    train_ame: bool,
    truth: str | Path | None,
    contexts: Sequence[str] | None,
    test_fraction: float,
    max_rows: int | None,
    ame_max_rows: int | None,
    lpm_params: Mapping[str, Any] | None,
    ame_params: Mapping[str, Any] | None,
    seed: int,
) -> dict[str, Any]:
    """The options of a run as ``summary.json`` records them."""
    return {
        "data": str(data) if not isinstance(data, pl.DataFrame) else "<table>",
        "model": model,
        "train_ame": train_ame,
        "truth": str(truth) if truth is not None else None,
        "contexts": list(contexts) if contexts is not None else None,
        "test_fraction": test_fraction,
        "max_rows": max_rows,
        "ame_max_rows": ame_max_rows,
        "lpm_params": dict(lpm_params or {}),
        "ame_params": dict(ame_params or {}),
        "seed": seed,
    }


@dataclass
class _Tables:
    """The per-row table (both methods), its aggregates, and the sanity check against a truth."""

    table: pl.DataFrame
    by_perturbation: pl.DataFrame
    by_context: pl.DataFrame
    sanity: dict[str, Any] | None
    figure_scores: pl.DataFrame | None


def _tables(parts: list[pl.DataFrame], truth_table: pl.DataFrame | None) -> _Tables:
    from lpm.sim.truth import DOWNSTREAM_FLAG

    table = pl.concat(parts, how="diagonal")
    scores = per_perturbation_scores(table)
    if truth_table is None:
        sanity = figure_scores = None
    else:
        sanity = sanity_check(scores, truth_table)
        flags = truth_table.select(S.PERTURBATION, DOWNSTREAM_FLAG)
        figure_scores = scores.join(flags, on=S.PERTURBATION)
    by_pert = importance_by(table, by=S.PERTURBATION)
    by_ctx = importance_by(table, by=S.CONTEXT)
    return _Tables(table, by_pert, by_ctx, sanity, figure_scores)


def _write(tmp: Path, tables: _Tables, summary: dict[str, Any]) -> None:
    tables.table.write_parquet(tmp / ROWS_FILE)
    tables.by_perturbation.write_csv(tmp / BY_PERTURBATION_FILE)
    tables.by_context.write_csv(tmp / BY_CONTEXT_FILE)
    figure = plot_importance(tables.by_context, tables.figure_scores)
    save_png(figure, tmp / FIGURE_FILE, dpi=110)
    text = json.dumps(summary, indent=2, sort_keys=True, default=_json_default)
    (tmp / SUMMARY_FILE).write_text(text + "\n")


def explain_params(
    params: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``--param`` values by model (``lpm_fast.*``, ``lpm_ame.*``) as (lpm_params, ame_params);
    another model's parameters are refused in one line."""
    unknown = sorted(set(params) - {"lpm_fast", "lpm_ame"})
    if unknown:
        raise LpmInputError(
            None,
            f"--param names model(s) {', '.join(unknown)}; explain takes lpm_fast.* and lpm_ame.*",
        )
    lpm, ame = params.get("lpm_fast"), params.get("lpm_ame")
    return (dict(lpm) if lpm else None), (dict(ame) if ame else None)


def run_explain(
    data: pl.DataFrame | str | Path,
    *,
    out: str | Path,
    model: PerturbationModel | str | Path | None = None,
    train_ame: bool = True,
    truth: str | Path | None = None,
    contexts: Sequence[str] | None = None,
    test_fraction: float = 0.2,
    max_rows: int | None = 1_000_000,
    ame_max_rows: int | None = 300_000,
    lpm_params: Mapping[str, Any] | None = None,
    ame_params: Mapping[str, Any] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> ExplainResult:
    """Explain a model's predictions on held-out profiles and write the tables and a figure.

    A seeded ``test_fraction`` of whole profiles is held out. Without ``model`` an ``lpm_fast``
    (``lpm_params``) is fitted on the rest; a given model (fitted, or a saved folder) is used as
    it is and may have seen the held-out rows. With ``train_ame`` an ``lpm_ame`` (``ame_params``)
    is fitted on the rest too and its attention is reported beside the post-hoc importance
    (both by the ``explain`` task). Held-out rows both models can predict are explained (a
    seeded sample of ``max_rows``). Returns an :class:`ExplainResult`: the per-row table (both
    methods), the two aggregated tables, the summary and the files.

    Parameters
    ----------
    data, out
        A store folder or a long table (finite values); the folder written whole (refused
        before any work if it exists, unless ``overwrite``): :data:`FILES`, ``summary.json``
        holding shares per input and method, test MSEs, the sanity check and the options.
    truth, contexts
        A simulator truth folder (``perturbations.parquet``): adds the sanity check and its
        figure panel; keep only these contexts (e.g. McFaline's glioblastoma lines).
    max_rows, ame_max_rows
        Held-out rows explained, training rows of the AME (None: all), at most (seeded samples).
    """
    from lpm.sim.truth import read_downstream_effects

    out = check_output(Path(out), kind="folder", overwrite=overwrite)
    if not 0 < test_fraction < 1:
        raise LpmInputError(None, f"test_fraction must be in (0, 1), got {test_fraction}")
    truth_table = read_downstream_effects(truth) if truth is not None else None
    t0 = time.perf_counter()
    train, test = _held_out(_load(data, contexts), test_fraction=test_fraction, seed=seed)
    models = _models(
        train,
        model,
        train_ame=train_ame,
        ame_max_rows=ame_max_rows,
        lpm_params=lpm_params,
        ame_params=ame_params,
        seed=seed,
    )
    parts = _importance(_explained_rows(test, models, max_rows=max_rows, seed=seed), models)
    tables = _tables(parts, truth_table)
    models.timings["total_s"] = time.perf_counter() - t0
    summary = _summary(parts, tables, models)
    summary["options"] = _options(
        data,
        model=models.description,
        train_ame=train_ame,
        truth=truth,
        contexts=contexts,
        test_fraction=test_fraction,
        max_rows=max_rows,
        ame_max_rows=ame_max_rows,
        lpm_params=lpm_params,
        ame_params=ame_params,
        seed=seed,
    )
    with atomic_dir(out, overwrite=overwrite) as tmp:
        _write(tmp, tables, summary)
    files = [out / f for f in FILES]
    return ExplainResult(
        tables.table, tables.by_perturbation, tables.by_context, summary, out, files
    )


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


__all__ = [
    "BY_CONTEXT_FILE",
    "BY_PERTURBATION_FILE",
    "FIGURE_FILE",
    "FILES",
    "ROWS_FILE",
    "SUMMARY_FILE",
    "ExplainResult",
    "run_explain",
]
