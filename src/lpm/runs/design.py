"""``lpm design select`` and ``lpm design loop`` as library calls: read inputs, run, write."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from lpm._utils.atomic import atomic_dir, atomic_file, check_output
from lpm.data import schema as S
from lpm.design.loop import DesignResult, LoopConfig, perturbation_graph, run_design
from lpm.design.pool import design_universe, read_strength
from lpm.design.selection import coverage_selection, spectral_selection
from lpm.errors import LpmInputError
from lpm.pl.design import learning_curves_figure
from lpm.pl.save import save_png

METHODS = ("coverage", "spectral")


def read_symbols(path: str | Path) -> list[str]:
    """Genes or perturbations, one per line (``#`` comments), or a table's ``perturbation`` or
    ``gene`` column."""
    path = Path(path)
    if not path.is_file():
        raise LpmInputError(path, "no such file")
    if path.suffix in (".parquet", ".csv", ".tsv"):
        from lpm.data.io.symbol_tables import read_symbol_table

        names = (S.PERTURBATION, "gene", "symbol")
        table = read_symbol_table(path, "symbol table", symbols=names)
        col = next((c for c in names if c in table.columns), None)
        if col is None:
            raise LpmInputError(path, "symbol table needs a perturbation, gene or symbol column")
        values = table[col].cast(pl.String).to_list()
    else:
        lines = path.read_text().splitlines()
        values = [v.strip() for v in lines if v.strip() and not v.lstrip().startswith("#")]
    if not values or any(v is None or v == "" for v in values):
        raise LpmInputError(path, "no symbols, or empty values")
    return values


def select_to_file(
    out: str | Path,
    *,
    k: int,
    method: str = "coverage",
    graph: str = "go",
    hops: int = 2,
    seed: int = 0,
    store: str | Path | None = None,
    candidates: str | Path | None = None,
    selected: str | Path | None = None,
    overwrite: bool = False,
) -> pl.DataFrame:
    """Choose ``k`` perturbations (a store's single genetic ones), genes (a file) or any gene of
    the graph, from the graph alone; write the ranked table (``out`` is checked before any
    work: an existing file is refused unless ``overwrite``)."""
    from lpm.data.store import open_store
    from lpm.priors.gene_graph import graph_source

    out = _selection_target(out, overwrite=overwrite)
    if method not in METHODS:
        raise LpmInputError(None, f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if store is not None and candidates is not None:
        raise LpmInputError(None, "give at most one of --store or --candidates")
    edges = graph_source(graph)
    gene: dict[str, str] = {}
    if store is not None:
        universe = design_universe(open_store(store).read(), test_fraction=0.0, seed=seed)
        gene = {p: universe.gene[p] for p in universe.pool}
        edges = perturbation_graph(edges, gene)
        names = universe.pool
    elif candidates is not None:
        names = read_symbols(candidates)
    else:
        names = sorted(set(edges["source"].to_list()) | set(edges["target"].to_list()))
    done = read_symbols(selected) if selected is not None else []
    unknown = sorted(set(done) - set(names))
    if unknown:
        raise LpmInputError(
            Path(selected) if selected else None,
            f"{len(unknown)} already-selected symbol(s) are not candidates, e.g. {unknown[0]!r}",
        )
    if method == "coverage":
        table = coverage_selection(edges, names, k, hops=hops, selected=done, seed=seed)
    else:
        table = spectral_selection(edges, names, k, selected=done, seed=seed)
    if gene:
        table = table.rename({"gene": S.PERTURBATION}).with_columns(
            pl.col(S.PERTURBATION).replace_strict(gene, return_dtype=pl.String).alias("gene")
        )
        table = table.select(
            "rank", S.PERTURBATION, "gene", pl.exclude("rank", S.PERTURBATION, "gene")
        )
    write_selection(table, out, overwrite=overwrite)
    return table


def design_loop_to_dir(
    store: str | Path,
    out: str | Path,
    *,
    strategies: Sequence[str],
    config: LoopConfig,
    strength: str | Path | None = None,
    gene_info: str | Path | None = None,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run the loop for each strategy on a store and write its folder."""
    from lpm.data.store import open_store

    out = check_output(out, kind="folder", overwrite=overwrite)
    rows = open_store(store).read()
    result = run_design(
        rows,
        strategies,
        config,
        strength=read_strength(strength, gene_info=gene_info) if strength is not None else None,
        progress=progress,
    )
    return save_design(result, out, overwrite=overwrite, command=command, store=str(store))


def save_design(
    result: DesignResult,
    out: str | Path,
    *,
    overwrite: bool = False,
    command: Sequence[str] | None = None,
    store: str | None = None,
) -> Path:
    """``rounds.csv`` (panel per round), ``acquired.csv``, ``summary.csv`` (AUC per strategy),
    ``universe.csv`` (pool/test/excluded), ``design.json`` and ``learning_curves.png``."""
    out = Path(out)
    config = result.config
    with atomic_dir(out, overwrite=overwrite) as tmp:
        result.rounds.write_csv(tmp / "rounds.csv")
        result.acquired.write_csv(tmp / "acquired.csv")
        result.summary.write_csv(tmp / "summary.csv")
        result.universe.table().write_csv(tmp / "universe.csv")
        meta = {
            "store": store,
            "command": list(command) if command else None,
            "config": {**config.__dict__, "prior": list(config.prior)},
            "hops": config.resolved_hops(),
            "n_pool": len(result.universe.pool),
            "n_test": len(result.universe.test),
            "n_excluded": len(result.universe.excluded),
        }
        (tmp / "design.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        figure = learning_curves_figure(
            result.rounds,
            title=f"{config.model} on {store or 'store'}, seed {config.seed}",
            top_label=f"strongest {config.top_fraction:.0%} acquired (fraction)",
        )
        save_png(figure, tmp / "learning_curves.png")
    return out


def _selection_target(out: str | Path, *, overwrite: bool) -> Path:
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise LpmInputError(out, "selection output must end in .csv or .parquet")
    return check_output(out, kind="file", overwrite=overwrite)


def write_selection(table: pl.DataFrame, out: str | Path, *, overwrite: bool = False) -> Path:
    """A selection as CSV or Parquet (by suffix: ``out`` was checked by :func:`select_to_file`
    before its work), written whole or not at all; an existing file is refused unless
    ``overwrite``."""
    out = Path(out)
    with atomic_file(out, overwrite=overwrite) as tmp:
        if out.suffix == ".parquet":
            table.write_parquet(tmp)
        else:
            table.write_csv(tmp)
    return out
