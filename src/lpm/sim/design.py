"""What the simulated screen perturbs, and the noiseless effect of each perturbation.

Genetic agents change a gene's activity ``u`` (log scale): CRISPRi by ``log(1 - k)`` with
knock-down ``k`` in 0.7-0.9, CRISPRa by ``log(a)`` with fold activation ``a`` in 2-8. The
steady-state change of log-expression is ``T u`` with ``T = (I - W)^-1``; the target's own
transcript moves too. Compounds inhibit the activity (not the transcript) of 1-3 regulators by a
Hill curve plus 1-3 weak off-targets, so their effect is ``(T - I) u(dose)``. A pair's effect is
built from its members' effects so that its interaction type holds by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lpm.data.symbols import combine, make_symbol
from lpm.sim.network import Network

CRISPRI = "CRISPRi"
CRISPRA = "CRISPRa"
PAIR = "combination"
COMPOUND = "compound"
KIND_SHARE = {CRISPRI: 0.35, CRISPRA: 0.20, PAIR: 0.30, COMPOUND: 0.15}
LEAF_SHARE = 0.2
SINGLES_SHARE = (0.6, 0.25, 0.15)  # pairs with 2, 1 and 0 of their singles in the design
INTERACTIONS = ("additive", "synergistic", "buffering", "epistatic", "neomorphic")
INTERACTION_SHARE = (0.4, 0.15, 0.15, 0.15, 0.15)
KNOCKDOWN = (0.7, 0.9)
ACTIVATION = (2.0, 8.0)
SYNERGY = (0.5, 1.0)  # pair = (1 + s) (a + b)
BUFFERING = (0.4, 0.7)  # pair = (1 - s) (a + b)
NEOMORPH_U = (1.0, 2.0)
DOSES_UM = (0.01, 0.1, 1.0, 10.0)
IC50_UM = (0.03, 3.0)
OFF_IC50_UM = (0.3, 10.0)
HILL = (1.0, 2.0)
EMAX = (0.8, 0.95)
OFF_EMAX = (0.1, 0.3)
MEASURED_SHARE = (0.5, 0.8)


@dataclass(frozen=True)
class Guide:
    """One genetic agent: its symbol, target gene and activity change (log scale)."""

    symbol: str
    modality: str
    gene: int
    u: float


@dataclass(frozen=True)
class Pair:
    symbol: str
    a: Guide
    b: Guide
    interaction: str
    strength: float
    dominant: str | None  # epistatic: the member whose effect the pair shows
    neo_gene: int  # neomorphic: the regulator whose program appears; -1 otherwise
    neo_u: float
    n_singles: int  # members that are also measured as singles (in some context)


@dataclass(frozen=True)
class Binding:
    gene: int
    ic50: float
    hill: float
    emax: float
    off_target: bool

    def inhibition(self, dose: float) -> float:
        d = dose**self.hill
        return self.emax * d / (d + self.ic50**self.hill)


@dataclass(frozen=True)
class Compound:
    symbol: str
    bindings: tuple[Binding, ...]


@dataclass(frozen=True)
class Design:
    singles: list[Guide]
    pairs: list[Pair]
    compounds: list[Compound]
    contexts: dict[str, tuple[int, ...]]  # symbol -> indices of the contexts it is measured in

    def genes_needed(self) -> np.ndarray:
        genes = {g.gene for g in self.singles}
        for p in self.pairs:
            genes |= {p.a.gene, p.b.gene} | ({p.neo_gene} if p.neo_gene >= 0 else set())
        for c in self.compounds:
            genes |= {b.gene for b in c.bindings}
        return np.array(sorted(genes), dtype=np.int64)


def split_counts(n: int, shares: Sequence[float], *, at_least_one: bool = False) -> list[int]:
    """Largest-remainder rounding of ``n * shares``; optionally every part gets one first."""
    shares_arr = np.asarray(shares, dtype=float) / sum(shares)
    base = np.zeros(len(shares_arr), dtype=np.int64)
    if at_least_one and n >= len(shares_arr):
        base += 1
        n -= len(shares_arr)
    raw = n * shares_arr
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    return [int(c) for c in base + counts]


class _Builder:
    def __init__(
        self, rng: np.random.Generator, net: Network, out_degree: np.ndarray, genes: list[str]
    ) -> None:
        self.rng = rng
        self.genes = genes
        self.active = np.array([g for g in net.regulators if out_degree[g] > 0], dtype=np.int64)
        hub = net.hub_weight[net.rank[self.active]]
        self.active_p = hub / hub.sum()
        self.leaves = np.flatnonzero(out_degree == 0)
        self.guides: dict[tuple[str, int], Guide] = {}

    def guide(self, modality: str, gene: int) -> Guide:
        key = (modality, gene)
        if key not in self.guides:
            if modality == CRISPRI:
                u = float(np.log1p(-self.rng.uniform(*KNOCKDOWN)))
            else:
                u = float(self.rng.uniform(*np.log(ACTIVATION)))
            self.guides[key] = Guide(make_symbol(modality, self.genes[gene]), modality, gene, u)
        return self.guides[key]

    def singles(self, modality: str, n: int) -> list[Guide]:
        n_leaf = min(len(self.leaves), max(1, round(LEAF_SHARE * n)) if n >= 2 else 0)
        n_reg = min(len(self.active), n - n_leaf)
        regs = self.rng.choice(self.active, size=n_reg, replace=False, p=self.active_p)
        leaves = self.rng.choice(self.leaves, size=min(len(self.leaves), n - n_reg), replace=False)
        return [self.guide(modality, int(g)) for g in (*regs, *leaves)]

    def pairs(self, n: int, singles: list[Guide]) -> list[Pair]:
        kinds = self.rng.permutation(
            np.repeat(INTERACTIONS, split_counts(n, INTERACTION_SHARE, at_least_one=True))
        )
        n_in = np.repeat([2, 1, 0], split_counts(n, SINGLES_SHARE))
        measured = {
            m: np.array(sorted(g.gene for g in singles if g.modality == m), dtype=np.int64)
            for m in (CRISPRI, CRISPRA)
        }
        seen: set[str] = set()
        out: list[Pair] = []
        for kind, k in zip(kinds.tolist(), n_in.tolist(), strict=True):
            modality = CRISPRA if self.rng.random() < 0.5 else CRISPRI
            inside = measured[modality]
            outside = np.setdiff1d(self.active, inside)
            if len(outside) < 2:
                outside = np.setdiff1d(np.arange(len(self.genes)), inside)
            for _ in range(50):
                pools = [inside] * k + [outside] * (2 - k)
                if any(len(p) == 0 for p in pools):
                    break
                ga, gb = (int(self.rng.choice(p)) for p in pools)
                a, b = sorted(
                    (self.guide(modality, ga), self.guide(modality, gb)), key=lambda g: g.symbol
                )
                symbol = combine([a.symbol, b.symbol])
                if ga != gb and symbol not in seen:
                    seen.add(symbol)
                    out.append(self._pair(symbol, a, b, kind, k))
                    break
        return out

    def _pair(self, symbol: str, a: Guide, b: Guide, kind: str, n_singles: int) -> Pair:
        strength, dominant, neo_gene, neo_u = 0.0, None, -1, 0.0
        if kind == "synergistic":
            strength = float(self.rng.uniform(*SYNERGY))
        elif kind == "buffering":
            strength = float(self.rng.uniform(*BUFFERING))
        elif kind == "epistatic":
            dominant = a.symbol if self.rng.random() < 0.5 else b.symbol
        elif kind == "neomorphic":
            pool = np.setdiff1d(self.active, [a.gene, b.gene])
            neo_gene = int(self.rng.choice(pool if len(pool) else self.active))
            neo_u = float(self.rng.choice([-1.0, 1.0]) * self.rng.uniform(*NEOMORPH_U))
        return Pair(symbol, a, b, kind, strength, dominant, neo_gene, neo_u, n_singles)

    def compounds(self, n: int) -> list[Compound]:
        width = max(3, len(str(n)))
        out = []
        for i in range(n):
            k_on = min(int(self.rng.integers(1, 4)), len(self.active))
            on = self.rng.choice(self.active, size=k_on, replace=False)
            pool = np.setdiff1d(self.active, on)
            if len(pool) == 0:
                pool = np.setdiff1d(np.arange(len(self.genes)), on)
            off = self.rng.choice(
                pool, size=min(int(self.rng.integers(1, 4)), len(pool)), replace=False
            )
            bindings = [self._binding(int(g), off_target=False) for g in on]
            bindings += [self._binding(int(g), off_target=True) for g in off]
            out.append(Compound(make_symbol(COMPOUND, f"C{i + 1:0{width}d}"), tuple(bindings)))
        return out

    def _binding(self, gene: int, *, off_target: bool) -> Binding:
        lo, hi = OFF_IC50_UM if off_target else IC50_UM
        ic50 = float(np.exp(self.rng.uniform(np.log(lo), np.log(hi))))
        hill = float(self.rng.uniform(*HILL))
        emax = float(self.rng.uniform(*(OFF_EMAX if off_target else EMAX)))
        return Binding(gene, ic50, hill, emax, off_target)


def build_design(
    rng: np.random.Generator,
    net: Network,
    out_degree: np.ndarray,
    genes: list[str],
    *,
    n_perturbations: int,
    n_contexts: int,
) -> Design:
    """Singles (CRISPRi, CRISPRa; some on leaf genes), pairs of typed interaction and compounds."""
    n_i, n_a, n_pair, n_cpd = split_counts(n_perturbations, list(KIND_SHARE.values()))
    b = _Builder(rng, net, out_degree, genes)
    singles = b.singles(CRISPRI, n_i) + b.singles(CRISPRA, n_a)
    pairs = b.pairs(n_pair, singles)
    compounds = b.compounds(n_cpd)
    contexts: dict[str, tuple[int, ...]] = {}
    for symbol in [
        *(g.symbol for g in singles),
        *(p.symbol for p in pairs),
        *(c.symbol for c in compounds),
    ]:
        m = int(np.clip(round(rng.uniform(*MEASURED_SHARE) * n_contexts), 1, n_contexts))
        contexts[symbol] = tuple(
            sorted(int(c) for c in rng.choice(n_contexts, size=m, replace=False))
        )
    symbols = list(contexts)
    for c in range(n_contexts):  # tiny designs: every context measures something
        if not any(c in cs for cs in contexts.values()):
            symbol = symbols[int(rng.integers(len(symbols)))]
            contexts[symbol] = tuple(sorted({*contexts[symbol], c}))
    return Design(singles, pairs, compounds, contexts)


class Effects:
    """Noiseless log-expression changes in one context, from its total-effect columns."""

    def __init__(self, total: np.ndarray, genes: np.ndarray) -> None:
        self.total = total
        self.col = {int(g): i for i, g in enumerate(genes)}

    def unit(self, gene: int) -> np.ndarray:
        return self.total[:, self.col[gene]]

    def guide(self, g: Guide) -> np.ndarray:
        return self.unit(g.gene) * g.u

    def pair(self, p: Pair) -> np.ndarray:
        a, b = self.guide(p.a), self.guide(p.b)
        if p.interaction == "synergistic":
            return (1.0 + p.strength) * (a + b)
        if p.interaction == "buffering":
            return (1.0 - p.strength) * (a + b)
        if p.interaction == "epistatic":
            return a.copy() if p.dominant == p.a.symbol else b.copy()
        if p.interaction == "neomorphic":
            return a + b + self.unit(p.neo_gene) * p.neo_u
        return a + b

    def compound(self, c: Compound, dose: float) -> np.ndarray:
        out = np.zeros(self.total.shape[0])
        for bd in c.bindings:
            u = float(np.log1p(-bd.inhibition(dose)))
            col = self.unit(bd.gene).copy()
            col[bd.gene] -= 1.0  # activity, not the transcript, is inhibited
            out += col * u
        return out
