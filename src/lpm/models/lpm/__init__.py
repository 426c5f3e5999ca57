"""The Large Perturbation Model: the estimator (exact and fast modes), its network and
LightningModule, the streaming rows and the LightningDataModule over them."""

from lpm.models.lpm.model import LPMFastModel, LPMModel

__all__ = ["LPMFastModel", "LPMModel"]
