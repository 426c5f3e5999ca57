"""Where prior knowledge is read from and where features derived from it are cached."""

from __future__ import annotations

import os
from pathlib import Path

from lpm.errors import LpmInputError


def priors_folder() -> Path:
    """Where keyword sources are read: ``$LPM_PRIORS``, else a ``shared/data`` beside the work."""
    env = os.environ.get("LPM_PRIORS")
    if env:
        return Path(env)
    for candidate in (Path("shared/data"), Path("../shared/data")):
        if candidate.is_dir():
            return candidate.resolve()
    raise LpmInputError(
        None,
        "feature keywords (go, regulons, morgan) need the priors folder: set LPM_PRIORS to the "
        "folder holding gene_ontology/, tf_regulons/ and compounds/",
    )


def cache_folder() -> Path:
    return Path(os.environ.get("LPM_CACHE", Path.home() / ".cache" / "lpm"))
