"""Ranked gene lists (``--layout ranked``): each (context, perturbation) list becomes binary
readouts "this gene is in the top k of the list".

A ranked list (sigrecon's signatures: genes ordered by log2FC × −log10 padj against control,
the top of the list most up-regulated) has ranks and no effect sizes, and ranks are known only
as far as the list goes (the top 1,000 in most files). So one list becomes, for every gene of a
readout panel, the label 1 if the gene's rank is at most ``k`` and 0 otherwise. A gene absent
from a list is known not to be in its top ``k`` as long as the list ranks at least ``k`` genes
(checked), so every label is exact: no rank beyond the list is guessed. Labels are
``readout_type`` ``binary`` and scored by AUROC/AUPRC.

The panel is the genes in the top ``k`` of at least ``panel_min_lists`` lists: a gene that is
almost never near the top adds rows that are nearly all 0, so it costs time and tells a model
little. The panel comes from all lists of the file, so it is the same for every split; it
decides which genes are scored, never their labels.

The lists are contrasts against control already, so there are no control rows, and none are
needed: models predict the labels of a (context, perturbation) pair directly.

Columns (names as options): ``context`` (``--context-column``; else ``--cell-line``),
``perturbation`` (``--perturbation-column``), ``gene`` (``--readout-column``), ``rank``
(``--value-column``); other columns (sigrecon's ``in_up`` flag) are dropped and listed in the notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import polars as pl

from lpm.data import schema as S
from lpm.data.io._naming import cell_line_of, dataset_of
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.symbol_tables import as_text
from lpm.data.io.tables import read_frame
from lpm.data.symbols import COMBINATION_SEPARATOR, combine, make_symbol, parse
from lpm.errors import LpmInputError

#: Genes whose rank is at most this are "in the top k" (sigrecon's signatures are top-100 lists).
DEFAULT_TOP_K: Final = 100
#: A gene is a readout when it is in the top k of at least this many lists.
DEFAULT_PANEL_MIN_LISTS: Final = 10
#: What to do with a gene named twice in one list: refuse, or keep its best (smallest) rank.
DUPLICATE_GENES: Final = ("error", "best-rank")
#: Default column names (case-insensitive), each overridable by an option.
COLUMNS: Final = {
    "context": ("context", "--context-column"),
    "perturbation": ("perturbation", "--perturbation-column"),
    "gene": ("gene", "--readout-column"),
    "rank": ("rank", "--value-column"),
}
#: A bare name is one agent, so a ``+`` inside it (``(+)-JQ1``) cannot mean a combination.
PLUS_SPELLED: Final = "plus"
_LIST = ("_context", S.PERTURBATION)


def ranked_settings(options: IngestOptions, path: Path | None = None) -> tuple[int, int, str]:
    """``(top_k, panel_min_lists, duplicate_genes)`` with defaults, each checked."""
    k = DEFAULT_TOP_K if options.top_k is None else options.top_k
    n = DEFAULT_PANEL_MIN_LISTS if options.panel_min_lists is None else options.panel_min_lists
    dup = options.duplicate_genes or DUPLICATE_GENES[0]
    if k < 1:
        raise LpmInputError(path, f"--top-k must be at least 1 (got {k})")
    if n < 1:
        raise LpmInputError(path, f"--panel-min-lists must be at least 1 (got {n})")
    if dup not in DUPLICATE_GENES:
        raise LpmInputError(
            path, f"unknown --duplicate-genes {dup!r} (expected {' or '.join(DUPLICATE_GENES)})"
        )
    if options.control_label is not None:
        raise LpmInputError(
            path,
            "ranked lists hold no control rows (each list is already a contrast against "
            "control); drop --control-label",
        )
    if options.readout_type not in (None, S.BINARY):
        raise LpmInputError(
            path,
            f"ranked lists become binary 'in the top k' readouts; --readout-type "
            f"{options.readout_type!r} cannot apply (drop it or pass binary)",
        )
    return k, n, dup


def _column(df: pl.DataFrame, role: str, given: str | None, path: Path) -> str | None:
    default, option = COLUMNS[role]
    name = given or default
    hits = [c for c in df.columns if c == name] or [
        c for c in df.columns if c.lower() == name.lower()
    ]
    if len(hits) == 1:
        return hits[0]
    if given or role != "context":
        raise LpmInputError(
            path,
            f"no {role} column {name!r} ({option}); found: {', '.join(df.columns) or 'none'}",
        )
    return None


def _text(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    out = as_text(df[column], path).str.strip_chars()
    empty = out.is_null() | (out == "")
    if empty.any():
        i = int(empty.arg_true()[0])
        raise LpmInputError(
            path,
            f"column {column!r} has {int(empty.sum())} empty value(s), first at data row {i + 1}",
        )
    return out


def _ranks(series: pl.Series, column: str, path: Path) -> pl.Series:
    """Positive whole numbers; the first bad value is named with its data row."""
    text = as_text(series, path).str.strip_chars()
    parsed = text.cast(pl.Float64, strict=False)
    problems = (
        (parsed.is_null(), "non-numeric or empty"),
        (~parsed.is_finite(), "NaN/inf"),
        (parsed != parsed.floor(), "non-integer"),
        (parsed < 1, "below 1"),
    )
    for bad, what in problems:
        bad = bad.fill_null(False)
        if bad.any():
            i = int(bad.arg_true()[0])
            raise LpmInputError(
                path,
                f"column {column!r} has {int(bad.sum())} {what} rank(s), first {text[i]!r} "
                f"at data row {i + 1} (ranks are whole numbers from 1)",
            )
    return parsed.cast(pl.Int64)


def _read(path: Path, options: IngestOptions, notes: dict[str, Any]) -> pl.DataFrame:
    """The file as ``_context, perturbation, gene, rank`` (names as written, checked)."""
    df = read_frame(path)
    if df.height == 0:
        raise LpmInputError(path, f"no data rows (columns: {', '.join(df.columns) or 'none'})")
    cols = {
        "context": _column(df, "context", options.context_column, path),
        "perturbation": _column(df, "perturbation", options.perturbation_column, path),
        "gene": _column(df, "gene", options.readout_column, path),
        "rank": _column(df, "rank", options.value_column, path),
    }
    notes["columns"] = {role: c for role, c in cols.items() if c}
    dropped = [c for c in df.columns if c not in cols.values()]
    if dropped:
        notes["dropped_columns"] = dropped
    context_col = cols["context"]
    if context_col:
        context = _text(df, context_col, path)
    else:
        context = pl.Series([cell_line_of(path, options, notes)] * df.height, dtype=pl.String)
    return pl.DataFrame(
        {
            "_context": context,
            S.PERTURBATION: _text(df, str(cols["perturbation"]), path),
            "gene": _text(df, str(cols["gene"]), path),
            "rank": _ranks(df[str(cols["rank"])], str(cols["rank"]), path),
        }
    )


def _list_name(row: dict[str, Any]) -> str:
    return f"({row['_context']!r}, {row[S.PERTURBATION]!r})"


def _check_lists(lists: pl.DataFrame, k: int, rank_col: str, path: Path) -> pl.DataFrame:
    """Ranks unique and gap-free in each list, and every list at least ``k`` long."""
    repeated = lists.filter(pl.struct(*_LIST, "rank").is_duplicated())
    if repeated.height:
        first = repeated.row(0, named=True)
        raise LpmInputError(
            path,
            f"column {rank_col!r}: rank {first['rank']} repeats in list {_list_name(first)} "
            f"({repeated.height} rows share a rank within their list)",
        )
    sizes = lists.group_by(_LIST, maintain_order=True).agg(
        pl.len().alias("n"), pl.col("rank").max().alias("top")
    )
    gaps = sizes.filter(pl.col("n") != pl.col("top"))
    if gaps.height:
        first = gaps.row(0, named=True)
        raise LpmInputError(
            path,
            f"column {rank_col!r}: list {_list_name(first)} has {first['n']} genes but ranks up "
            f"to {first['top']}; ranks must run 1..n (a missing rank is a gene not known)",
        )
    short = sizes.filter(pl.col("n") < k)
    if short.height:
        first = short.row(0, named=True)
        raise LpmInputError(
            path,
            f"list {_list_name(first)} ranks {first['n']} genes, fewer than --top-k {k} "
            f"({short.height} such lists): a gene absent from it is not known to be outside "
            "its top k; lower --top-k",
        )
    return sizes


def _deduplicated(
    lists: pl.DataFrame, policy: str, gene_col: str, path: Path, after: str = ""
) -> tuple[pl.DataFrame, int]:
    """One row per gene and list: an error, or each gene's best rank (``--duplicate-genes``)."""
    dup = lists.filter(pl.struct(*_LIST, "gene").is_duplicated())
    if dup.height == 0:
        return lists, 0
    if policy == "error":
        first = dup.row(0, named=True)
        ranks = dup.filter(
            (pl.col("_context") == first["_context"])
            & (pl.col(S.PERTURBATION) == first[S.PERTURBATION])
            & (pl.col("gene") == first["gene"])
        )["rank"]
        raise LpmInputError(
            path,
            f"column {gene_col!r}: {dup.height} rows name a gene twice in one list{after}, first "
            f"{first['gene']!r} in list {_list_name(first)} at ranks "
            f"{', '.join(map(str, ranks.sort().to_list()))}; pass --duplicate-genes best-rank "
            "to keep each gene's best rank",
        )
    best = lists.group_by(*_LIST, "gene", maintain_order=True).agg(pl.col("rank").min())
    return best, lists.height - best.height


def _map_genes(lists: pl.DataFrame, gene_info: Path | None, notes: dict[str, Any]) -> pl.DataFrame:
    """Gene names to official symbols (Ensembl ids included) before the top k is taken, so two
    names of one gene in a list are one gene (see :mod:`lpm.data.genes`)."""
    if gene_info is None:
        notes["gene_ids"] = "as written (pass --gene-info to map Ensembl ids and aliases)"
        return lists
    from lpm.data.genes import load_gene_aliases

    names = lists["gene"].unique().sort().to_list()
    res = load_gene_aliases(gene_info).harmonise(names)
    table = {a: b for a, b in zip(names, res.mapped, strict=True) if a != b}
    ensembl = sum(1 for a in table if a.startswith("ENSG"))
    notes["gene_ids"] = (
        f"{len(names)} names: {len(table)} mapped to official symbols ({ensembl} of them "
        f"Ensembl ids), {res.n_unmapped} unmapped kept as written"
    )
    return lists.with_columns(pl.col("gene").replace(table)) if table else lists


def _symbol(name: str, kind: str | None, path: Path, column: str) -> tuple[str, bool]:
    """A list's perturbation symbol: ``TYPE:TARGET[+...]`` kept, a bare name typed as one agent
    (and whether a ``+`` in it was spelled out)."""
    if name == S.CONTROL:
        raise LpmInputError(
            path,
            f"column {column!r} names a list {name!r}: a ranked list is a contrast against "
            "control, so no list can be the control",
        )
    try:
        return combine([str(m) for m in parse(name)]), False
    except LpmInputError:
        pass
    if kind is None:
        raise LpmInputError(
            path,
            f"column {column!r} holds bare names (e.g. {name!r}); pass --perturbation-type "
            "(CRISPRi for knock-downs, compound for drugs)",
        )
    try:
        target = name.replace(COMBINATION_SEPARATOR, PLUS_SPELLED)
        return make_symbol(kind, target), target != name
    except LpmInputError as exc:
        raise LpmInputError(path, f"column {column!r} value {name!r}: {exc.problem}") from None


def _symbols(
    names: list[str], options: IngestOptions, path: Path, column: str, notes: dict[str, Any]
) -> dict[str, str]:
    out: dict[str, str] = {}
    spelled: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        sym, renamed = _symbol(name, options.perturbation_type, path, column)
        if sym in seen:
            raise LpmInputError(
                path, f"column {column!r}: {seen[sym]!r} and {name!r} both become {sym!r}"
            )
        seen[sym], out[name] = name, sym
        if renamed:
            spelled.append(f"{name!r} -> {sym!r}")
    if spelled:
        notes["perturbation_names"] = (
            f"'+' inside {len(spelled)} bare name(s) spelled {PLUS_SPELLED!r} (a bare name is "
            f"one agent): {', '.join(spelled[:5])}"
        )
    return out


def _labels(
    lists: pl.DataFrame, sizes: pl.DataFrame, k: int, min_lists: int, path: Path
) -> tuple[pl.DataFrame, int]:
    """Every (list, panel gene) pair with its 0/1 label, and the number of genes ranked."""
    top = lists.filter(pl.col("rank") <= k).select(*_LIST, "gene")
    freq = top.group_by("gene").agg(pl.len().alias("lists"))
    panel = freq.filter(pl.col("lists") >= min_lists).select("gene").sort("gene")
    if panel.height == 0:
        most = freq.select(pl.col("lists").max()).item() or 0
        raise LpmInputError(
            path,
            f"no gene is in the top {k} of {min_lists} lists (the most is {most}); lower "
            "--panel-min-lists",
        )
    pairs = sizes.select(*_LIST).join(panel, how="cross")
    labelled = pairs.join(
        top.with_columns(pl.lit(1.0, pl.Float32).alias(S.VALUE)),
        on=[*_LIST, "gene"],
        how="left",
        maintain_order="left",
    ).with_columns(pl.col(S.VALUE).fill_null(0.0))
    return labelled, lists["gene"].n_unique()


def read_ranked_lists(path: Path, options: IngestOptions) -> IngestResult:
    """Long binary rows "gene in the top k of this list" from a table of ranked gene lists.

    Parameters
    ----------
    path
        CSV/TSV/Parquet with one row per (context, perturbation, gene) and its rank (1 = top).
    options
        ``top_k`` (default :data:`DEFAULT_TOP_K`), ``panel_min_lists`` (default
        :data:`DEFAULT_PANEL_MIN_LISTS`), ``duplicate_genes``, ``dataset``,
        ``perturbation_type`` for bare names, ``gene_info`` (genes mapped before the top k).

    Returns
    -------
    IngestResult
        One row per list and panel gene, ``value`` 1.0 or 0.0, ``readout_type`` binary; no
        controls (none exist: the lists are contrasts against control).
    """
    path = Path(path)
    k, min_lists, policy = ranked_settings(options, path)
    notes: dict[str, Any] = {"layout": "ranked"}
    lists = _read(path, options, notes)
    rank_col, gene_col = notes["columns"]["rank"], notes["columns"]["gene"]
    sizes = _check_lists(lists, k, rank_col, path)
    lists, n_dup = _deduplicated(lists, policy, gene_col, path)
    lists = _map_genes(lists, options.gene_info, notes)
    lists, n_merged = _deduplicated(lists, policy, gene_col, path, " after --gene-info mapping")
    labelled, n_genes = _labels(lists, sizes, k, min_lists, path)
    dataset = dataset_of(path, options, notes)
    pert_col = notes["columns"]["perturbation"]
    names = labelled[S.PERTURBATION].unique().sort().to_list()
    symbols = _symbols(names, options, path, pert_col, notes)
    lines = labelled["_context"].unique().to_list()
    contexts = {c: c if S.CONTEXT_SEPARATOR in c else S.context_id(dataset, c) for c in lines}
    rows = labelled.select(
        pl.col("_context").replace_strict(contexts, return_dtype=pl.String).alias(S.CONTEXT),
        pl.col(S.PERTURBATION).replace_strict(symbols, return_dtype=pl.String),
        pl.col("gene").alias(S.READOUT),
        pl.col(S.VALUE).cast(pl.Float32),
        pl.lit(dataset).alias(S.DATASET),
        pl.lit(S.BINARY).alias(S.READOUT_TYPE),
    )
    n_panel = rows[S.READOUT].n_unique()
    positives = int(rows[S.VALUE].sum())
    dropped = n_dup + n_merged
    duplicates = f"{dropped} rows dropped (a gene named twice in a list keeps its best rank)"
    notes["ranked"] = {
        "top_k": k,
        "panel_min_lists": min_lists,
        "lists": sizes.height,
        "list_lengths": "{}-{}".format(
            *sizes.select(pl.col("n").min().alias("lo"), pl.col("n").max().alias("hi")).row(0)
        ),
        "genes_ranked": n_genes,
        "panel_genes": n_panel,
        "rows": rows.height,
        "positives": positives,
        "duplicate_genes": duplicates if dropped else "none",
        "label": f"1 = gene ranked 1..{k} in the list, 0 = ranked lower or not in the list",
    }
    return IngestResult(rows, None, {"reader": "read_ranked_lists"}, notes)


def ranked_lines(notes: Any) -> list[str]:
    """One line per ranked source in a store's notes, for ``lpm info``."""
    if not isinstance(notes, dict):
        return []
    found = []
    for key, value in notes.items():
        if isinstance(value, dict) and isinstance(value.get("ranked"), dict):
            r = value["ranked"]
            found.append(
                f"{key}: top {r['top_k']} of {r['lists']:,} lists (ranking {r['list_lengths']} "
                f"genes); panel = {r['panel_genes']:,} of {r['genes_ranked']:,} genes in the top "
                f"{r['top_k']} of >= {r['panel_min_lists']} lists; {r['rows']:,} rows, "
                f"{r['positives']:,} labelled 1; duplicate genes: {r['duplicate_genes']}; "
                f"gene ids: {value.get('gene_ids', 'as written')}"
            )
        elif isinstance(value, dict):
            found += ranked_lines(value)
    return found


__all__ = [
    "DEFAULT_PANEL_MIN_LISTS",
    "DEFAULT_TOP_K",
    "DUPLICATE_GENES",
    "ranked_lines",
    "ranked_settings",
    "read_ranked_lists",
]
