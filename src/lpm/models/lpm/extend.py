"""Featurised LPM tables: features of the training symbols, and symbols never seen in training.

A fitted featurised network is reduced to a plain one (every table a matrix of vectors) before
prediction; symbols never seen but described by a feature source get rows computed from their
features alone, so prediction code is the same with and without features.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl
import torch

from lpm.data import schema as S
from lpm.data.symbols import PERTURBATION_TYPES
from lpm.errors import LpmInputError
from lpm.models.lpm.featurised import FeaturisedTable
from lpm.models.lpm.network import LPMNetwork
from lpm.models.lpm.vocab import Vocab, member_symbols
from lpm.priors.features import FeatureSource, member_types

Block = tuple[np.ndarray, np.ndarray]  # (values, found) per symbol
_ATTR = {"member": "member", "context": "context", "readout": "readout"}


def _symbols(vocab: Vocab, kind: str) -> list[str]:
    return {"member": vocab.members, "context": vocab.contexts, "readout": vocab.readouts}[kind]


def _type_codes(symbols: list[str]) -> np.ndarray:
    index = {t: i for i, t in enumerate(PERTURBATION_TYPES)}
    return np.array([index.get(t, 0) for t in member_types(symbols)], dtype=np.int64)


def training_blocks(
    sources: dict[str, list[FeatureSource]], vocab: Vocab
) -> dict[str, list[Block]]:
    """Feature blocks of the training symbols; a source describing none of them is an error
    (its encoder would never learn, and every unseen symbol would get an untrained vector)."""
    out: dict[str, list[Block]] = {}
    for kind, srcs in sources.items():
        symbols = _symbols(vocab, kind)
        blocks = []
        for src in srcs:
            values, found = src.vectors(symbols)
            if not found.any():
                raise LpmInputError(
                    src.spec,
                    f"has features for none of the {len(symbols)} training {kind}s "
                    f"(e.g. {', '.join(symbols[:3])})",
                )
            blocks.append((values, found))
        out[kind] = blocks
    return out


def fill_features(net: LPMNetwork, blocks: dict[str, list[Block]], vocab: Vocab) -> None:
    """Copy the training symbols' features into the network's buffers."""
    for kind, bl in blocks.items():
        if not bl:
            continue
        table = getattr(net, _ATTR[kind])
        assert isinstance(table, FeaturisedTable)
        types = torch.from_numpy(_type_codes(vocab.members)) if kind == "member" else None
        table.set_features([(torch.from_numpy(v), torch.from_numpy(f)) for v, f in bl], types)


@dataclass
class Extension:
    """The training vocabulary plus the unseen symbols of some rows that features describe."""

    vocab: Vocab
    new: dict[str, list[str]]
    blocks: dict[str, list[Block]]

    @property
    def n_new(self) -> int:
        return sum(len(v) for v in self.new.values())

    @classmethod
    def of(
        cls, vocab: Vocab, sources: dict[str, list[FeatureSource]], rows: pl.DataFrame
    ) -> Extension:
        unseen = {
            "context": sorted(
                set(rows[S.CONTEXT].drop_nulls().unique().to_list()) - set(vocab.contexts)
            ),
            "readout": sorted(
                set(rows[S.READOUT].drop_nulls().unique().to_list()) - set(vocab.readouts)
            ),
            "member": sorted(
                {
                    m
                    for p in rows[S.PERTURBATION].drop_nulls().unique().to_list()
                    if p not in vocab.perturbation_index
                    for m in member_symbols(p)
                }
                - set(vocab.members)
            ),
        }
        new: dict[str, list[str]] = {k: [] for k in unseen}
        blocks: dict[str, list[Block]] = {k: [] for k in unseen}
        for kind, symbols in unseen.items():
            srcs = sources.get(kind, [])
            if not symbols or not srcs:
                continue
            found_blocks = [src.vectors(symbols) for src in srcs]
            any_found = np.any([f for _, f in found_blocks], axis=0)
            keep = np.flatnonzero(any_found)
            new[kind] = [symbols[i] for i in keep]
            blocks[kind] = [(v[keep], f[keep]) for v, f in found_blocks]
        extended = Vocab(
            vocab.contexts + new["context"],
            vocab.readouts + new["readout"],
            vocab.members + new["member"],
            vocab.perturbations,
        )
        return cls(extended, new, blocks)


def bake(net: LPMNetwork, extension: Extension | None) -> LPMNetwork:
    """A plain network computing the same function, with rows for ``extension``'s new symbols.

    A new readout's bias (fast mode) is the mean of the trained readouts' biases.
    """
    cfg = net.cfg
    new = extension.new if extension is not None else {}
    plain_cfg = replace(
        cfg,
        features={},
        n_members=cfg.n_members + len(new.get("member", [])),
        n_contexts=cfg.n_contexts + len(new.get("context", [])),
        n_readouts=cfg.n_readouts + len(new.get("readout", [])),
        n_member_types=0,
    )
    state = {
        k: v
        for k, v in net.state_dict().items()
        if not k.startswith(("member.", "context.", "readout."))
    }
    with torch.no_grad():
        for kind, attr in _ATTR.items():
            table = getattr(net, attr)
            added = new.get(kind, [])
            if isinstance(table, FeaturisedTable):
                types = (
                    torch.from_numpy(_type_codes(added))
                    if kind == "member"
                    else torch.zeros(len(added), dtype=torch.long)
                )
                blocks = [
                    (torch.from_numpy(v), torch.from_numpy(f))
                    for v, f in (extension.blocks[kind] if extension is not None and added else [])
                ]
                state[f"{attr}.weight"] = table.effective(blocks or None, types)
            else:
                assert not added, f"unseen {kind}s without features cannot be added"
                state[f"{attr}.weight"] = table.weight.detach().clone()
        if cfg.fast and new.get("readout"):
            bias = net.readout_bias.detach()
            state["readout_bias"] = torch.cat([bias, bias.mean().repeat(len(new["readout"]))])
    plain = LPMNetwork(plain_cfg)
    plain.load_state_dict(state)
    plain.eval()
    return plain
