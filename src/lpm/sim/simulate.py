"""``lpm simulate``: a perturbation world with known ground truth, the dataset that needs no download.

The model, in brief (details in the private ``_simulate_*`` modules):

- **Network.** Genes ``G0001..``; about 10% are regulators with Zipf-like hub weights, the rest
  regulate nothing (leaves). Each gene has 2-4 regulators drawn by hub weight, signed weights
  (60% activating; edges into regulators weaker, so cascades stay damped), a DAG apart from a few
  feedback edges. Each context (cell line ``S01..``) drops, sign-flips and adds 10-20% of the
  edges; feedback edges are scaled down where needed so the spectral radius of ``|W|`` is < 0.7.
- **Steady state.** Log-expression ``x = b_c + (I - W_c)^-1 u``: ``b_c`` is the context's basal
  profile (a shared one, shifted on a quarter of the genes per context), ``u`` the activity
  change a perturbation makes.
- **Perturbations.** CRISPRi (70-90% knock-down) and CRISPRa (2-8 fold) singles, a fifth of them
  on leaf genes (no downstream effect); pairs ``CRISPRa:A+CRISPRa:B`` (or two CRISPRi) whose
  members are both, one or neither measured as singles; compounds ``compound:C001`` inhibiting
  the activity (not the transcript) of 1-3 regulators by a Hill curve (IC50 0.03-3 µM, Hill 1-2)
  plus 1-3 weak off-targets, measured at 0.01, 0.1, 1 and 10 µM. Each perturbation is measured
  in a random 50-80% of the contexts. Shares: 35% CRISPRi, 20% CRISPRa, 30% pairs, 15% compounds.
- **Pair interactions by construction.** additive ``a + b``; synergistic ``(1 + s)(a + b)``;
  buffering ``(1 - s)(a + b)``; epistatic: one member's effect alone; neomorphic ``a + b`` plus
  the program of an unrelated regulator (40% additive, 15% each of the others).
- **Measurement.** Per condition, ``n_cells`` cells (controls: four times as many) of
  negative-binomial counts (about 20 UMIs per gene and cell, dispersion 0.02-0.25 per gene),
  normalised to 1e4 per cell, ``log1p``'d and averaged (pseudobulk); the value is the pseudobulk
  minus the context's control pseudobulk. Contexts of ``sim_rnaseq`` read every gene; those of
  ``sim_l1000`` (every third cell line) read only the landmark genes.

Output folder: ``store/`` (a PRC store), ``truth/`` (edges, pair types, compound targets,
perturbations, genes, contexts, basal profiles, landmarks) and ``config.json``. The same seed
gives byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lpm._utils.atomic import atomic_dir, check_output
from lpm.data import schema as S
from lpm.data.store import PerturbationStore, open_store, write_store
from lpm.errors import LpmInputError
from lpm.sim.counts import DISPERSION, pseudobulk_many
from lpm.sim.design import DOSES_UM, Design, Effects, build_design
from lpm.sim.network import ContextNetwork, build_network, gene_names, rewire
from lpm.sim.truth import Context, World, write_truth

SIMULATOR_VERSION = 1
RNASEQ = "sim_rnaseq"
L1000 = "sim_l1000"
MAX_LANDMARKS = 978
CONTROL_CELL_FACTOR = 4
BASAL_SD = 1.0
CONTEXT_SHIFT_SHARE = 0.25
CONTEXT_SHIFT_SD = 0.5
STORE = "store"
TRUTH = "truth"
CONFIG = "config.json"

#: Accepted (least, most) of each count; the most keeps a run within a workstation's memory.
_RANGES: Final[dict[str, tuple[int, int | None]]] = {
    "n_genes": (20, 100_000),
    "n_perturbations": (4, 1_000_000),
    "n_contexts": (1, 1_000),
    "seed": (0, None),
    "n_cells": (1, 100_000),
}

# independent random streams, keyed so that adding one never shifts another
_NETWORK, _GENES, _CONTEXTS, _DESIGN, _CELLS = range(1, 6)


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """The options of a simulation; ``resolved()`` checks them and fills the defaults."""

    n_genes: int = 2000
    n_perturbations: int = 500
    n_contexts: int = 5
    seed: int = 0
    n_cells: int = 50
    n_landmarks: int | None = None

    def resolved(self) -> SimulationConfig:
        checked: dict[str, int] = {}
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise LpmInputError(
                    None, f"simulation option {name}={value!r} must be an integer >= {low}"
                )
            if high is not None and value > high:
                raise LpmInputError(
                    None, f"simulation option {name}={value!r} must be at most {high:,}"
                )
            checked[name] = int(value)
        n_landmarks = (
            min(MAX_LANDMARKS, self.n_genes // 2) if self.n_landmarks is None else self.n_landmarks
        )
        if (
            isinstance(n_landmarks, bool)
            or not isinstance(n_landmarks, int | np.integer)
            or not 1 <= n_landmarks <= self.n_genes
        ):
            raise LpmInputError(
                None,
                f"simulation option n_landmarks={n_landmarks!r} must be an integer in 1..n_genes ({self.n_genes})",
            )
        return replace(self, **checked, n_landmarks=int(n_landmarks))

    def to_json(self) -> str:
        return json.dumps(
            {**asdict(self), "simulator_version": SIMULATOR_VERSION}, indent=2, sort_keys=True
        )

    @classmethod
    def read(cls, path: str | Path) -> SimulationConfig:
        """The configuration a simulation saved beside its outputs (to rerun it)."""
        try:
            raw = json.loads(Path(path).read_text())
            raw.pop("simulator_version", None)
            return cls(**raw)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise LpmInputError(path, f"not a simulation config: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class SimulationResult:
    """Where a simulation wrote its outputs, and how much it wrote."""

    out: Path
    store: Path
    truth: Path
    config: SimulationConfig
    n_rows: int
    n_control_rows: int
    n_conditions: int
    n_perturbations: Mapping[str, int] = field(default_factory=dict)

    def open(self) -> PerturbationStore:
        return open_store(self.store)

    def __str__(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in self.n_perturbations.items())
        return (
            f"{self.out}: {self.n_rows} rows, {self.config.n_contexts} contexts, "
            f"{self.config.n_genes} genes, perturbations: {kinds}"
        )


def _contexts(n_contexts: int) -> list[Context]:
    width = max(2, len(str(n_contexts)))
    n_l1000 = n_contexts // 3
    out = []
    for i in range(n_contexts):
        dataset = L1000 if i >= n_contexts - n_l1000 else RNASEQ
        line = f"S{i + 1:0{width}d}"
        out.append(Context(i, line, dataset, S.context_id(dataset, line), dataset == L1000))
    return out


def _conditions(
    design: Design, eff: Effects, c: int
) -> tuple[list[str], list[float | None], np.ndarray]:
    """Labels, doses and noiseless deltas of every condition measured in context ``c``."""
    labels: list[str] = []
    doses: list[float | None] = []
    deltas: list[np.ndarray] = []
    for g in design.singles:
        if c in design.contexts[g.symbol]:
            labels.append(g.symbol)
            doses.append(None)
            deltas.append(eff.guide(g))
    for p in design.pairs:
        if c in design.contexts[p.symbol]:
            labels.append(p.symbol)
            doses.append(None)
            deltas.append(eff.pair(p))
    for cpd in design.compounds:
        if c in design.contexts[cpd.symbol]:
            for dose in DOSES_UM:
                labels.append(cpd.symbol)
                doses.append(dose)
                deltas.append(eff.compound(cpd, dose))
    # the store's key order, so that writing it finds the rows (nearly) sorted
    order = sorted(range(len(labels)), key=lambda i: (labels[i], doses[i] or 0.0))
    stacked = np.stack([deltas[i] for i in order]) if deltas else np.zeros((0, eff.total.shape[0]))
    return [labels[i] for i in order], [doses[i] for i in order], stacked


def _rows(
    ctx: Context,
    labels: list[str],
    doses: list[float | None],
    values: np.ndarray,
    readouts: list[str],
    n_cells: int,
) -> pl.DataFrame:
    n_cond, n_read = values.shape
    dose = np.array([np.nan if d is None else d for d in doses], dtype=np.float32)
    return pl.DataFrame(
        {
            S.CONTEXT: pl.Series([ctx.id]).gather(np.zeros(n_cond * n_read, dtype=np.int64)),
            S.PERTURBATION: pl.Series(labels, dtype=pl.String).gather(
                np.repeat(np.arange(n_cond), n_read)
            ),
            S.READOUT: pl.Series(readouts).gather(np.tile(np.arange(n_read), n_cond)),
            S.VALUE: values.astype(np.float32).ravel(),
            S.DOSE: pl.Series(np.repeat(dose, n_read)).fill_nan(None),
            S.N_CELLS: np.full(n_cond * n_read, n_cells, dtype=np.int32),
            S.DATASET: pl.Series([ctx.dataset]).gather(np.zeros(n_cond * n_read, dtype=np.int64)),
            S.READOUT_TYPE: pl.Series(["delta"]).gather(np.zeros(n_cond * n_read, dtype=np.int64)),
        }
    )


def simulate(
    out: str | Path,
    *,
    n_genes: int = 2000,
    n_perturbations: int = 500,
    n_contexts: int = 5,
    seed: int = 0,
    n_cells: int = 50,
    n_landmarks: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Simulate a perturbation screen with known ground truth and write it to ``out``.

    Parameters
    ----------
    out
        Folder to create; it receives ``store/``, ``truth/`` and ``config.json``, whole or not at all.
    n_genes, n_perturbations, n_contexts
        Size of the world: genes (all are readouts), perturbation symbols (compounds count once,
        whatever their doses) and cell lines.
    seed
        The same seed gives byte-identical files.
    n_cells
        Cells sampled per perturbed condition (controls get four times as many).
    n_landmarks
        Genes read by the L1000-like contexts; default ``min(978, n_genes // 2)``.
    overwrite
        Replace ``out`` if it exists.
    progress
        Called with a short message after each step.

    Returns
    -------
    SimulationResult
        Paths of the outputs and row counts.

    Example
    -------
    >>> import tempfile
    >>> res = simulate(Path(tempfile.mkdtemp()) / "sim", n_genes=60, n_perturbations=12, n_contexts=2)
    >>> res.open().contexts
    ['sim_rnaseq/S01', 'sim_rnaseq/S02']
    """
    cfg = SimulationConfig(
        n_genes=n_genes,
        n_perturbations=n_perturbations,
        n_contexts=n_contexts,
        seed=seed,
        n_cells=n_cells,
        n_landmarks=n_landmarks,
    ).resolved()
    out = check_output(out, kind="folder", overwrite=overwrite)  # before the work, not after
    say = progress or (lambda _msg: None)
    world = _build_world(cfg)
    say(
        f"network: {cfg.n_genes} genes, {len(world.network.regulators)} regulators, "
        f"{len(world.network.edges)} edges"
    )
    measurements, control_table, n_conditions = _measure(world, cfg, say)
    _write(out, world, cfg, measurements, control_table, overwrite=overwrite, say=say)
    say(f"done: {out}")
    design = world.design
    counts = {m: sum(g.modality == m for g in design.singles) for m in ("CRISPRi", "CRISPRa")}
    counts |= {"combination": len(design.pairs), "compound": len(design.compounds)}
    return SimulationResult(
        out=out,
        store=out / STORE,
        truth=out / TRUTH,
        config=cfg,
        n_rows=measurements.height,
        n_control_rows=control_table.height,
        n_conditions=n_conditions,
        n_perturbations=counts,
    )


def _build_world(cfg: SimulationConfig) -> World:
    """Draw the network, the contexts, the per-gene parameters and the design."""
    assert cfg.n_landmarks is not None
    genes = gene_names(cfg.n_genes)
    net = build_network(np.random.default_rng([cfg.seed, _NETWORK]), cfg.n_genes)
    grng = np.random.default_rng([cfg.seed, _GENES])
    basal = grng.normal(0.0, BASAL_SD, size=cfg.n_genes)
    size = 1.0 / grng.uniform(*DISPERSION, size=cfg.n_genes)
    landmarks = np.sort(grng.choice(cfg.n_genes, size=cfg.n_landmarks, replace=False))
    contexts = _contexts(cfg.n_contexts)
    networks: list[ContextNetwork] = []
    basals: list[np.ndarray] = []
    for ctx in contexts:
        crng = np.random.default_rng([cfg.seed, _CONTEXTS, ctx.index])
        networks.append(rewire(crng, net))
        shifted = crng.random(cfg.n_genes) < CONTEXT_SHIFT_SHARE
        basals.append(basal + shifted * crng.normal(0.0, CONTEXT_SHIFT_SD, size=cfg.n_genes))
    out_degree = np.zeros(cfg.n_genes, dtype=np.int64)
    for n in networks:
        out_degree += np.bincount(n.edges.source, minlength=cfg.n_genes)
    design = build_design(
        np.random.default_rng([cfg.seed, _DESIGN]),
        net,
        out_degree,
        genes,
        n_perturbations=cfg.n_perturbations,
        n_contexts=cfg.n_contexts,
    )
    return World(genes, net, networks, basals, contexts, landmarks, size, out_degree, design, {})


def _measure(
    world: World, cfg: SimulationConfig, say: Callable[[str], None]
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Sample every context's conditions; long rows of deltas and the control profiles.

    Fills ``world.effect_norms`` (noiseless effect norms; compounds at the top dose).
    """
    needed = world.design.genes_needed()
    frames: dict[str, pl.DataFrame] = {}
    controls: dict[str, pl.DataFrame] = {}
    n_conditions = 0
    for ctx, cnet, b in zip(world.contexts, world.networks, world.basals, strict=True):
        eff = Effects(cnet.total_effects(cfg.n_genes, needed), needed)
        labels, doses, deltas = _conditions(world.design, eff, ctx.index)
        for lab, dose, d in zip(labels, doses, deltas, strict=True):
            if dose is None or dose == DOSES_UM[-1]:
                world.effect_norms.setdefault(lab, []).append(float(np.linalg.norm(d)))
        cells = [CONTROL_CELL_FACTOR * cfg.n_cells] + [cfg.n_cells] * len(labels)
        keys = [(cfg.seed, _CELLS, ctx.index, k) for k in range(len(labels) + 1)]
        pb = pseudobulk_many(np.vstack([b, b + deltas]), world.size, cells, keys)
        cols = world.landmarks if ctx.landmarks_only else np.arange(cfg.n_genes)
        readouts = [world.genes[i] for i in cols]
        delta = pb[1:, cols] - pb[0, cols]
        frames[ctx.id] = _rows(ctx, labels, doses, delta, readouts, cfg.n_cells)
        controls[ctx.id] = pl.DataFrame(
            {
                S.CONTEXT: [ctx.id] * len(cols),
                S.READOUT: readouts,
                S.VALUE: pb[0, cols].astype(np.float32),
                S.N_CELLS: np.full(len(cols), cells[0], dtype=np.int32),
            }
        )
        n_conditions += len(labels)
        say(f"{ctx.id}: {len(labels)} conditions sampled")
    ids = sorted(frames)  # the store's order: writing finds the rows already sorted
    measurements = pl.concat([frames[i] for i in ids], rechunk=True)
    return measurements, pl.concat([controls[i] for i in ids]), n_conditions


__all__ = ["SimulationConfig", "SimulationResult", "simulate"]


def _write(
    out: Path,
    world: World,
    cfg: SimulationConfig,
    measurements: pl.DataFrame,
    controls: pl.DataFrame,
    *,
    overwrite: bool,
    say: Callable[[str], None],
) -> None:
    """The store, the truth and the config, into ``out`` whole or not at all."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        say(f"writing store: {measurements.height} rows")
        write_store(
            measurements,
            tmp / STORE,
            controls=controls,
            sources=[
                {"name": "lpm.simulate", "simulator_version": SIMULATOR_VERSION, **asdict(cfg)}
            ],
            notes={"simulated": True, "truth": f"../{TRUTH}"},
            source=out / STORE,
        )
        write_truth(world, tmp / TRUTH)
        (tmp / CONFIG).write_text(cfg.to_json() + "\n")
