"""Mechanism labels: which columns are read, how a name with several labels and loosely written
names match, and a file without the columns is one error naming what it found."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpm.errors import LpmInputError
from lpm.priors.mechanisms import Annotations, load_mechanism_annotations


def test_the_drug_repurposing_hub_file_reads_as_it_ships(tmp_path: Path) -> None:
    path = tmp_path / "drh.txt"
    path.write_text(
        "!Source\tThe Drug Repurposing Hub\n"
        "pert_iname\tmoa\ttarget\n"
        "trametinib\tMEK inhibitor\tMAP2K1\n"
        "YM-201636\tPI3K inhibitor\t\n"
        "YM-201636\tPIKfyve inhibitor\t\n"
        "nothing\t\t\n"
    )
    labels = load_mechanism_annotations(path)
    assert labels == {
        "trametinib": "MEK inhibitor",
        "YM-201636": "PI3K inhibitor|PIKfyve inhibitor",
    }


def test_a_file_without_name_or_label_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.tsv"
    path.write_text("drug\tclass\nx\ty\n")
    with pytest.raises(LpmInputError, match=r"a name column .* found drug, class"):
        load_mechanism_annotations(path)
    with pytest.raises(LpmInputError, match="cannot read annotations"):
        load_mechanism_annotations(tmp_path / "absent.tsv")


def test_loose_names_match_only_when_unambiguous() -> None:
    ann = Annotations.of({"PLX-4720": "RAF inhibitor", "A-B": "x", "AB": "y"})
    assert ann.mechanism(["plx4720"]) == "RAF inhibitor"
    assert ann.mechanism(["PLX-4720", "PLX4720"]) == "RAF inhibitor+RAF inhibitor"
    assert ann.mechanism(["ab"]) is None  # two names share the key: no guess
    assert ann.mechanism(["PLX-4720", "unknown"]) is None
