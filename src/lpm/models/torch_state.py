"""A torch network's weights as named numpy arrays beside a model's other state (no pickle)."""

from __future__ import annotations

from typing import Any

import numpy as np

PREFIX = "net."


def network_arrays(net: Any) -> dict[str, np.ndarray]:
    return {f"{PREFIX}{k}": v.detach().numpy() for k, v in net.state_dict().items()}


def load_network_arrays(net: Any, arrays: dict[str, np.ndarray]) -> Any:
    import torch

    net.load_state_dict(
        {
            k.removeprefix(PREFIX): torch.as_tensor(v)
            for k, v in arrays.items()
            if k.startswith(PREFIX)
        }
    )
    return net
