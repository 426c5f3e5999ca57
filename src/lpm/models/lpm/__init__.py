"""The Large Perturbation Model: the estimator (exact and fast modes, :mod:`.model`), its network
and LightningModule, the streaming rows and the LightningDataModule over them.

Nothing is imported here: the light modules (:mod:`.vocab`, :mod:`.rows`) load without torch
and Lightning.
"""
