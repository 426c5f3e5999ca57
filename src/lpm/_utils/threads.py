"""One torch thread for small networks on CPU: bit-identical results and no spinning threads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, then restore the previous count.

    Small models (a few thousand rows per step) gain nothing from a second thread on CPU and
    lose up to 10× when the cores are shared with other work.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
