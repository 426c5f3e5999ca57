"""lpm: one model over Perturbation, Readout and Context.

Import is kept light: heavy stacks (torch, plotting) load only in the modules that use them.
"""

from lpm.errors import LpmError, LpmInputError, UnknownSymbolError

__version__ = "0.1.0"

__all__ = ["LpmError", "LpmInputError", "UnknownSymbolError", "__version__"]
