"""An embedding table whose rows add encoded prior features to learned vectors.

``row(i) = keep_i * learned_i + sum_b has_bi * encoder_b([features_bi, type_i])``. Training
drops the learned part of a featurised symbol with probability ``dropout`` per lookup, so the
encoders must carry the signal alone: that is all an unseen symbol will have. After training
the table reduces to plain vectors (:meth:`FeaturisedTable.effective`), and vectors for symbols
never seen come from their features alone (:meth:`FeaturisedTable.encode`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeaturisedTable(nn.Module):
    """Learned vectors plus one small MLP encoder per feature block (see the module docstring)."""

    def __init__(
        self, n: int, dim: int, widths: list[int], *, hidden: int, dropout: float, n_types: int
    ) -> None:
        super().__init__()
        self.n, self.dim, self.dropout, self.n_types = n, dim, dropout, n_types
        self.learned = nn.Embedding(n, dim)
        self.encoders = nn.ModuleList(
            nn.Sequential(nn.Linear(w + n_types, hidden), nn.ReLU(), nn.Linear(hidden, dim))
            for w in widths
        )
        for b, w in enumerate(widths):
            self.register_buffer(f"feat{b}", torch.zeros(n, w))
            self.register_buffer(f"has{b}", torch.zeros(n, dtype=torch.bool))
            # column mean and sd over the training symbols' features: every block enters its
            # encoder standardised, whatever its scale (fingerprint bits, SVD factors)
            self.register_buffer(f"mu{b}", torch.zeros(w))
            self.register_buffer(f"sd{b}", torch.ones(w))
        self.register_buffer("types", torch.zeros(n, dtype=torch.long))

    def set_features(
        self, blocks: list[tuple[torch.Tensor, torch.Tensor]], types: torch.Tensor | None
    ) -> None:
        """Fill the feature buffers of the trained symbols (values, found) block by block."""
        for b, (values, found) in enumerate(blocks):
            getattr(self, f"feat{b}").copy_(values)
            getattr(self, f"has{b}").copy_(found)
            seen = values[found].double()
            getattr(self, f"mu{b}").copy_(seen.mean(0))
            sd = seen.std(0, correction=0) if len(seen) > 1 else torch.ones(values.shape[1])
            getattr(self, f"sd{b}").copy_(torch.where(sd > 1e-8, sd, torch.ones_like(sd)))
        if types is not None:
            buffer: torch.Tensor = self.types  # type: ignore[assignment]
            buffer.copy_(types)

    def _blocks(self, idx: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        feats = [getattr(self, f"feat{b}")[idx] for b in range(len(self.encoders))]
        has = [getattr(self, f"has{b}")[idx] for b in range(len(self.encoders))]
        return feats, has

    def encode(
        self, feats: list[torch.Tensor], has: list[torch.Tensor], types: torch.Tensor
    ) -> torch.Tensor:
        """The features' part of a row: encoded blocks summed where present (zeros elsewhere)."""
        out = torch.zeros((*types.shape, self.dim), dtype=self.learned.weight.dtype)
        onehot = (
            F.one_hot(types, self.n_types).to(out.dtype) if self.n_types else types.new_zeros(0)
        )
        for b, (enc, x, h) in enumerate(zip(self.encoders, feats, has, strict=True)):
            x = (x - getattr(self, f"mu{b}")) / getattr(self, f"sd{b}")
            inp = torch.cat([x, onehot], dim=-1) if self.n_types else x
            out = out + enc(inp) * h.unsqueeze(-1).to(out.dtype)
        return out

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        feats, has = self._blocks(idx)
        learned = self.learned(idx)
        if self.training and self.dropout > 0 and has:
            featurised = torch.stack(has).any(0)
            dropped = (torch.rand(idx.shape, device=idx.device) < self.dropout) & featurised
            learned = learned * (~dropped).unsqueeze(-1).to(learned.dtype)
        types: torch.Tensor = self.types  # type: ignore[assignment]
        return learned + self.encode(feats, has, types[idx])

    @property
    def weight(self) -> torch.Tensor:
        """Every row (so fast mode can score all readouts by one matrix product)."""
        return self(torch.arange(self.n, device=self.learned.weight.device))

    def effective(
        self, extra: list[tuple[torch.Tensor, torch.Tensor]] | None, extra_types: torch.Tensor
    ) -> torch.Tensor:
        """Plain vectors: the trained rows (learned + features), then ``extra`` symbols' rows
        from their features alone. Call in eval mode."""
        with torch.no_grad():
            rows = self(torch.arange(self.n))
            if extra is None or len(extra_types) == 0:
                return rows
            feats = [v for v, _ in extra]
            has = [f for _, f in extra]
            return torch.cat([rows, self.encode(feats, has, extra_types)])
