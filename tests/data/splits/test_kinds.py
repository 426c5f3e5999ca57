"""Leak tests for the seeded splits: disjoint parts, full cover, nothing held out seen in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data import schema as S
from lpm.data.splits import GROUP, SPLIT_KINDS, Split, describe_split, make_split
from lpm.data.symbols import combine, is_combination, members
from lpm.errors import LpmInputError

SEEDS = range(12)
ROW_ID = "row_id"


def _table(
    seed: int = 0, *, n_contexts: int = 4, n_genes: int = 10, n_combos: int = 8
) -> pl.DataFrame:
    """Several contexts, genetic singles, compounds at two doses, combinations and controls."""
    rng = np.random.default_rng(seed)
    genes = [f"CRISPRi:G{i}" for i in range(n_genes)]
    compounds = ["compound:drugA", "compound:drugB"]
    combos: list[str] = []
    while len(combos) < n_combos:
        a, b = rng.choice(genes, 2, replace=False)
        if (c := combine([str(a), str(b)])) not in combos:
            combos.append(c)
    readouts = [f"r{i}" for i in range(5)]
    records: list[dict[str, object]] = []
    for k in range(n_contexts):
        ctx = f"sim/C{k}"
        present = [g for g in genes if rng.random() < 0.8] + [
            c for c in combos if rng.random() < 0.7
        ]
        conditions: list[tuple[str, float | None]] = [(S.CONTROL, None)]
        conditions += [(p, None) for p in present]
        conditions += [(c, d) for c in compounds for d in (0.1, 1.0)]
        for pert, dose in conditions:
            for r in readouts:
                records.append(
                    {
                        S.CONTEXT: ctx,
                        S.PERTURBATION: pert,
                        S.DOSE: dose,
                        S.READOUT: r,
                        S.VALUE: float(rng.normal()),
                    }
                )
    df = pl.DataFrame(
        records,
        schema={
            S.CONTEXT: pl.String,
            S.PERTURBATION: pl.String,
            S.DOSE: pl.Float32,
            S.READOUT: pl.String,
            S.VALUE: pl.Float32,
        },
    )
    return df.with_row_index(ROW_ID)


TABLE = _table()
DOSES = (0.01, 0.1, 1.0, 10.0, 100.0)


def _dose_table(seed: int = 0) -> pl.DataFrame:
    """Two contexts, three compounds at five doses, one at two, CRISPR singles and controls.

    Every condition is measured at two times and two replicates, over four readouts.
    """
    rng = np.random.default_rng(seed)
    conditions: list[tuple[str, float | None]] = [(S.CONTROL, None)]
    conditions += [(f"CRISPRi:G{i}", None) for i in range(4)]
    conditions += [(f"compound:drug{c}", d) for c in "ABC" for d in DOSES]
    conditions += [("compound:drugD", d) for d in (0.1, 1.0)]
    records = [
        {
            S.CONTEXT: f"sim/C{k}",
            S.PERTURBATION: pert,
            S.DOSE: dose,
            S.TIME: time,
            S.REPLICATE: rep,
            S.READOUT: f"r{r}",
            S.VALUE: float(rng.normal()),
        }
        for k in range(2)
        for pert, dose in conditions
        for time in (6.0, 24.0)
        for rep in (0, 1)
        for r in range(4)
    ]
    df = pl.DataFrame(
        records,
        schema={
            S.CONTEXT: pl.String,
            S.PERTURBATION: pl.String,
            S.DOSE: pl.Float32,
            S.TIME: pl.Float32,
            S.REPLICATE: pl.Int32,
            S.READOUT: pl.String,
            S.VALUE: pl.Float32,
        },
    )
    return df.with_row_index(ROW_ID)


DOSE_TABLE = _dose_table()


def _pairs(df: pl.DataFrame) -> set[tuple[str, str]]:
    return set(df.select(S.CONTEXT, S.PERTURBATION).unique().iter_rows())


def _profiles(df: pl.DataFrame) -> set[tuple[str, str, float | None]]:
    return set(df.select(S.CONTEXT, S.PERTURBATION, S.DOSE).unique().iter_rows())


def _ids(df: pl.DataFrame) -> set[int]:
    return set(df[ROW_ID].to_list())


def _table_for(kind: str) -> pl.DataFrame:
    return DOSE_TABLE if kind == "unseen_dose" else TABLE


def _split(kind: str, seed: int, **kw: object) -> Split:
    return make_split(_table_for(kind), kind=kind, seed=seed, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", SPLIT_KINDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_parts_are_disjoint_and_cover_the_input(kind: str, seed: int) -> None:
    table = _table_for(kind)
    split = _split(kind, seed)
    train, val, test = _ids(split.train), _ids(split.val), _ids(split.test)
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(range(table.height))
    assert split.train.height + split.val.height + split.test.height == table.height
    assert split.test.height > 0 and split.train.height > 0
    assert split.train.columns == table.columns
    # Rows keep input order within each part.
    for part in (split.train, split.val, split.test):
        assert part[ROW_ID].is_sorted()
    # test_groups lists exactly the held-out units (its key columns), once each.
    keys = [c for c in split.test_groups.columns if c != GROUP]
    assert keys == (
        [S.CONTEXT, S.PERTURBATION, S.DOSE]
        if kind == "unseen_dose"
        else [S.CONTEXT, S.PERTURBATION]
    )
    held = set(split.test.select(keys).unique().iter_rows())
    assert split.test_groups.height == len(held)
    assert set(split.test_groups.select(keys).iter_rows()) == held
    assert split.test_groups[GROUP].null_count() == 0
    # The benchmark's join of test with test_groups labels every test row.
    labelled = split.test.join(split.test_groups, on=keys, how="left", nulls_equal=True)
    assert labelled.height == split.test.height and labelled[GROUP].null_count() == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_unseen_pair_holds_out_pairs_measured_elsewhere(seed: int) -> None:
    split = _split("unseen_pair", seed)
    train_pairs = _pairs(split.train)
    for part in (split.test, split.val):
        for ctx, pert in _pairs(part):
            assert (ctx, pert) not in train_pairs
            assert pert != S.CONTROL
            assert any(p == pert and c != ctx for c, p in train_pairs), (
                f"{pert} has no training context"
            )
    assert not _pairs(split.test) & _pairs(split.val)
    assert set(split.test_groups[GROUP].unique().to_list()) == {"unseen_pair"}


def test_unseen_pair_needs_multi_context_perturbations() -> None:
    single_context = TABLE.with_columns(
        (pl.col(S.PERTURBATION) + "_" + pl.col(S.CONTEXT).str.slice(5)).alias(S.PERTURBATION)
    )
    single_context = single_context.filter(pl.col(S.PERTURBATION).str.starts_with("CRISPRi"))
    with pytest.raises(LpmInputError, match="at least two contexts"):
        make_split(single_context, kind="unseen_pair")


def test_unseen_pair_takes_the_requested_share_where_possible() -> None:
    split = _split("unseen_pair", 3, test_fraction=0.3, val_fraction=0.1)
    n_pairs = len({p for p in _pairs(TABLE) if p[1] != S.CONTROL})
    assert len(_pairs(split.test)) == round(0.3 * n_pairs)
    assert len(_pairs(split.val)) == round(0.1 * n_pairs)


@pytest.mark.parametrize("seed", SEEDS)
def test_unseen_perturbation_never_in_training(seed: int) -> None:
    split = _split("unseen_perturbation", seed)
    train_symbols = set(split.train[S.PERTURBATION].to_list())
    test_symbols = set(split.test[S.PERTURBATION].to_list())
    assert not test_symbols & train_symbols
    assert not set(split.val[S.PERTURBATION].to_list()) & (train_symbols | test_symbols)
    assert S.CONTROL not in test_symbols | set(split.val[S.PERTURBATION].to_list())
    # Every row of a held-out symbol is in test, all contexts and doses.
    assert (
        split.test.height == TABLE.filter(pl.col(S.PERTURBATION).is_in(list(test_symbols))).height
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_unseen_context_holds_out_a_whole_context(seed: int) -> None:
    split = _split("unseen_context", seed)
    test_contexts = set(split.test[S.CONTEXT].to_list())
    assert len(test_contexts) == 1
    assert not test_contexts & set(split.train[S.CONTEXT].to_list())
    assert not test_contexts & set(split.val[S.CONTEXT].to_list())
    (ctx,) = test_contexts
    assert split.test.height == TABLE.filter(pl.col(S.CONTEXT) == ctx).height
    assert S.CONTROL not in split.val[S.PERTURBATION].to_list()


def test_unseen_context_by_name_and_unknown_name() -> None:
    split = make_split(TABLE, kind="unseen_context", context="sim/C2")
    assert set(split.test[S.CONTEXT].to_list()) == {"sim/C2"}
    with pytest.raises(
        LpmInputError,
        match=r"unknown context 'sim/C9'; valid contexts: sim/C0, sim/C1, sim/C2, sim/C3",
    ):
        make_split(TABLE, kind="unseen_context", context="sim/C9")
    with pytest.raises(LpmInputError, match="only applies to kind='unseen_context'"):
        make_split(TABLE, kind="random", context="sim/C2")


def test_unseen_context_draws_different_contexts_by_seed() -> None:
    drawn = {_split("unseen_context", s).test[S.CONTEXT][0] for s in SEEDS}
    assert len(drawn) > 1


def _dose_ranges(df: pl.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    ranges = (
        df.filter(pl.col(S.DOSE).is_not_null())
        .group_by(S.CONTEXT, S.PERTURBATION)
        .agg(pl.col(S.DOSE).min().alias("lo"), pl.col(S.DOSE).max().alias("hi"))
    )
    return {(c, p): (lo, hi) for c, p, lo, hi in ranges.iter_rows()}


def _check_unseen_dose(table: pl.DataFrame, split: Split) -> None:
    train_profiles = _profiles(split.train)
    test_profiles, val_profiles = _profiles(split.test), _profiles(split.val)
    assert test_profiles and not test_profiles & val_profiles
    assert not (test_profiles | val_profiles) & train_profiles
    full = _dose_ranges(table)
    n_doses = dict(
        table.filter(pl.col(S.DOSE).is_not_null())
        .group_by(S.CONTEXT, S.PERTURBATION)
        .agg(pl.col(S.DOSE).n_unique())
        .select(pl.concat_list(S.CONTEXT, S.PERTURBATION).list.join("|"), S.DOSE)
        .iter_rows()
    )
    for ctx, pert, dose in test_profiles | val_profiles:
        assert dose is not None and pert != S.CONTROL
        assert n_doses[f"{ctx}|{pert}"] >= 3
        lo, hi = full[(ctx, pert)]
        assert lo < dose < hi
        # The lowest and highest dose of a held-out perturbation stay in training there.
        assert (ctx, pert, lo) in train_profiles and (ctx, pert, hi) in train_profiles
    # Every row of a held-out profile (readouts, times, replicates) goes with it.
    for part, profiles in ((split.test, test_profiles), (split.val, val_profiles)):
        keyed = pl.DataFrame(
            list(profiles),
            schema=table.select(S.CONTEXT, S.PERTURBATION, S.DOSE).schema,
            orient="row",
        )
        assert part.height == table.join(keyed, on=[S.CONTEXT, S.PERTURBATION, S.DOSE]).height


@pytest.mark.parametrize("seed", SEEDS)
def test_unseen_dose_holds_out_interior_doses(seed: int) -> None:
    split = _split("unseen_dose", seed)
    _check_unseen_dose(DOSE_TABLE, split)
    # 2 contexts x 3 compounds x 3 interior doses = 18 eligible profiles.
    assert len(_profiles(split.test)) == round(0.2 * 18)
    assert len(_profiles(split.val)) == round(0.1 * 18)
    assert set(split.test[S.PERTURBATION].to_list()) <= {f"compound:drug{c}" for c in "ABC"}
    assert set(split.test_groups[GROUP].to_list()) == {"unseen_dose"}
    assert split.test_groups.columns == [S.CONTEXT, S.PERTURBATION, S.DOSE, GROUP]


def test_unseen_dose_at_least_one_and_val_may_be_empty() -> None:
    # One perturbation at three doses: a single interior dose, to test; none left for val.
    table = DOSE_TABLE.filter(
        (pl.col(S.CONTEXT) == "sim/C0")
        & (pl.col(S.DOSE).is_null() | pl.col(S.DOSE).is_in([1.0, 10.0, 100.0]))
        & ~pl.col(S.PERTURBATION).is_in(["compound:drugB", "compound:drugC"])
    )
    split = make_split(table, kind="unseen_dose", test_fraction=0.01, val_fraction=0.5)
    assert _profiles(split.test) == {("sim/C0", "compound:drugA", 10.0)}
    assert split.val.height == 0
    _check_unseen_dose(table, split)


def test_unseen_dose_needs_three_doses() -> None:
    message = "unseen_dose needs perturbations measured at three or more doses in a context; this data has none"
    with pytest.raises(LpmInputError, match=message):
        make_split(DOSE_TABLE.drop(S.DOSE), kind="unseen_dose")
    with pytest.raises(LpmInputError, match=message):
        make_split(TABLE, kind="unseen_dose")  # compounds at two doses only
    with pytest.raises(LpmInputError, match=message):
        make_split(
            DOSE_TABLE.filter(pl.col(S.DOSE).is_null() | (pl.col(S.DOSE) >= 10.0)),
            kind="unseen_dose",
        )


@pytest.mark.realdata
def test_unseen_dose_on_real_lincs() -> None:
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "stores" / "lincs"
    if not path.exists():
        pytest.skip(f"no LINCS store at {path} (built locally, not committed)")
    from lpm.data.store import open_store

    rows = open_store(path).read().with_row_index(ROW_ID)
    split = make_split(rows, kind="unseen_dose", seed=0)
    _check_unseen_dose(rows, split)
    assert split.train.height + split.val.height + split.test.height == rows.height
    assert split.test_groups.height == len(_profiles(split.test))


def _recount(split: Split) -> dict[tuple[str, str], str]:
    train_pairs = _pairs(split.train)
    out = {}
    for ctx, pert in _pairs(split.test):
        if is_combination(pert):
            out[(ctx, pert)] = f"seen{sum((ctx, m) in train_pairs for m in members(pert))}"
        else:
            out[(ctx, pert)] = "single"
    return out


@pytest.mark.parametrize("singles", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("seed", SEEDS)
def test_combination_holds_out_combos_with_correct_seen_labels(seed: int, singles: float) -> None:
    split = _split("combination", seed, test_fraction=0.3, holdout_singles_fraction=singles)
    test_symbols = set(split.test[S.PERTURBATION].to_list())
    combos = {p for p in test_symbols if is_combination(p)}
    assert combos and not test_symbols & set(split.train[S.PERTURBATION].to_list())
    assert not set(split.val[S.PERTURBATION].to_list()) & test_symbols
    assert all(is_combination(p) for p in split.val[S.PERTURBATION].to_list())
    labels = dict(
        zip(
            split.test_groups.select(S.CONTEXT, S.PERTURBATION).iter_rows(),
            split.test_groups[GROUP].to_list(),
            strict=True,
        )
    )
    assert labels == _recount(split)
    if singles == 0.0:
        assert test_symbols == combos


def test_combination_singles_holdout_creates_unseen_members() -> None:
    groups = pl.concat(
        [
            _split("combination", s, test_fraction=0.5, holdout_singles_fraction=0.5).test_groups
            for s in SEEDS
        ]
    )
    found = set(groups[GROUP].to_list())
    assert {"seen2", "seen1", "seen0", "single"} <= found


def test_combination_needs_combinations() -> None:
    with pytest.raises(LpmInputError, match="needs combination"):
        make_split(
            TABLE.filter(~pl.col(S.PERTURBATION).str.contains("+", literal=True)),
            kind="combination",
        )
    with pytest.raises(LpmInputError, match="only applies to kind='combination'"):
        make_split(TABLE, kind="random", holdout_singles_fraction=0.5)


@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_same_seed_same_split_other_seed_other_split(kind: str) -> None:
    a, b = _split(kind, 5), _split(kind, 5)
    for name in ("train", "val", "test", "test_groups"):
        assert getattr(a, name).equals(getattr(b, name))
    others = [_split(kind, s) for s in range(6, 10)]
    assert any(not o.test.equals(a.test) for o in others)


def test_split_ignores_input_row_order_for_unit_kinds() -> None:
    shuffled = TABLE.sample(fraction=1.0, shuffle=True, seed=1)
    for kind in ("unseen_pair", "unseen_perturbation", "unseen_context", "combination"):
        assert _ids(make_split(shuffled, kind=kind, seed=2).test) == _ids(_split(kind, 2).test)
    shuffled = DOSE_TABLE.sample(fraction=1.0, shuffle=True, seed=1)
    split = make_split(shuffled, kind="unseen_dose", seed=2)
    assert _ids(split.test) == _ids(_split("unseen_dose", 2).test)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_split_sizes(seed: int) -> None:
    split = _split("random", seed, test_fraction=0.25, val_fraction=0.15)
    assert split.test.height == round(0.25 * TABLE.height)
    assert split.val.height == round(0.15 * TABLE.height)


def test_bad_input_errors() -> None:
    with pytest.raises(LpmInputError, match="unknown split kind 'nope'"):
        make_split(TABLE, kind="nope")
    with pytest.raises(LpmInputError, match="test_fraction"):
        make_split(TABLE, kind="random", test_fraction=0.0)
    with pytest.raises(LpmInputError, match="val_fraction"):
        make_split(TABLE, kind="random", test_fraction=0.6, val_fraction=0.4)
    with pytest.raises(LpmInputError, match="miss column"):
        make_split(TABLE.drop(S.VALUE), kind="random")
    with pytest.raises(LpmInputError, match="cannot split"):
        make_split(TABLE.head(1), kind="random")
    with pytest.raises(LpmInputError, match="at least two contexts"):
        make_split(TABLE.filter(pl.col(S.CONTEXT) == "sim/C0"), kind="unseen_context")
    with pytest.raises(LpmInputError, match="at least two non-control"):
        make_split(
            TABLE.filter(pl.col(S.PERTURBATION).is_in([S.CONTROL, "CRISPRi:G1"])),
            kind="unseen_perturbation",
        )


def test_split_does_not_change_its_input() -> None:
    before = TABLE.clone()
    _split("combination", 0, holdout_singles_fraction=0.5)
    assert TABLE.equals(before)


def test_works_without_optional_columns() -> None:
    bare = (
        TABLE.drop(S.DOSE)
        .unique(subset=[S.CONTEXT, S.PERTURBATION, S.READOUT], keep="first")
        .sort(ROW_ID)
    )
    for kind in SPLIT_KINDS:
        if kind == "unseen_dose":  # needs the dose column
            with pytest.raises(LpmInputError, match="three or more doses"):
                make_split(bare, kind=kind, seed=1)
            continue
        split = make_split(bare, kind=kind, seed=1)
        assert split.train.height + split.val.height + split.test.height == bare.height


def test_describe_split_counts() -> None:
    split = _split("combination", 1, holdout_singles_fraction=0.5)
    info = describe_split(split)
    assert info["kind"] == "combination" and info["seed"] == 1
    assert info["rows"] == {
        "train": split.train.height,
        "val": split.val.height,
        "test": split.test.height,
    }
    assert sum(info["test_groups"].values()) == split.test_groups.height
    assert info["contexts"]["test"] == split.test[S.CONTEXT].n_unique()
    assert (
        info["conditions"]["test"]
        == split.test.select(S.CONTEXT, S.PERTURBATION, S.DOSE).n_unique()
    )
