"""A simulated perturbation world with known ground truth: a gene network per context,
perturbations of every kind, single cells drawn from it and measured as pseudobulk."""

from lpm.sim.simulate import SimulationConfig, SimulationResult, simulate

__all__ = ["SimulationConfig", "SimulationResult", "simulate"]
