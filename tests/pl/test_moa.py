"""The mechanism-of-action figure (``lpm.pl.moa``): both panels from the tables, n/a where there
is no ground truth or no genetic candidate."""

from __future__ import annotations

import polars as pl

from lpm.pl.moa import plot_moa
from tests.pl._figures import assert_labelled, texts


def _ranking(candidates: list[str]) -> pl.DataFrame:
    n = len(candidates)
    return pl.DataFrame(
        {
            "method": ["measured_profile"] * n,
            "query": ["compound:X"] * n,
            "candidate": candidates,
            "candidate_type": [c.partition(":")[0] for c in candidates],
            "similarity": [0.9 - 0.1 * i for i in range(n)],
            "score": [0.9 - 0.1 * i for i in range(n)],
            "rank": list(range(1, n + 1)),
        }
    )


def test_the_figure_draws_scores_and_top_candidates() -> None:
    per_query = pl.DataFrame(
        {"method": ["measured_profile"] * 2, "truth": ["sim_targets"] * 2, "auroc": [0.8, 1.0]}
    )
    fig = plot_moa(_ranking(["CRISPRi:T", "CRISPRi:U", "compound:Y"]), per_query)
    assert_labelled(fig)
    said = texts(fig)
    assert "AUROC per compound" in said and "rank of genetic candidate" in said
    assert "Top genetic candidates (measured_profile)" in said
    assert "T" in said and "X" in said  # candidate and compound names, without their type
    assert not any(t.startswith("n/a") for t in said)


def test_n_a_without_a_ground_truth_or_a_genetic_candidate() -> None:
    fig = plot_moa(_ranking(["compound:Y"]), pl.DataFrame())
    assert_labelled(fig)
    said = texts(fig)
    assert "n/a: no ground truth given" in said and "n/a: no genetic candidates" in said
