"""Discovery tasks by name, as models are found by name (:mod:`lpm.models.registry`).

Built-ins are listed here (loaded only when asked for), plugins come from the ``lpm.tasks``
entry-point group, and :func:`register_task` adds one class under one new name. Nothing is
registered by importing a module.

Example
-------
>>> list_tasks()
['embed', 'explain', 'grn', 'interactions', 'moa']
>>> get_task("grn", method="knockdown")
GeneNetworkTask(method='knockdown', context=None, min_abs_z=None, top_k=None)
"""

from __future__ import annotations

import inspect
from typing import Any

from lpm._utils.registry import Registry, is_subclass_of
from lpm.errors import LpmInputError
from lpm.tasks.base import DiscoveryTask

#: Built-in tasks: name -> "module:Class".
_BUILTINS: dict[str, str] = {
    "embed": "lpm.tasks.embeddings:EmbeddingTask",
    "explain": "lpm.tasks.explain:InputImportanceTask",
    "grn": "lpm.tasks.grn:GeneNetworkTask",
    "interactions": "lpm.tasks.interactions:InteractionTask",
    "moa": "lpm.tasks.moa:MechanismTask",
}

_TASKS: Registry[type[DiscoveryTask]] = Registry(
    kind="task",
    group="lpm.tasks",
    builtins=_BUILTINS,
    accepts=is_subclass_of(DiscoveryTask),
    expected="a DiscoveryTask subclass",
)


def register_task(name: str, cls: type[DiscoveryTask]) -> type[DiscoveryTask]:
    """Add a task class under a new name; a name already taken is an error."""
    return _TASKS.register(name, cls)


def list_tasks() -> list[str]:
    """Every task name available: built-ins, registered and plugins."""
    return _TASKS.names()


def get_task_class(name: str) -> type[DiscoveryTask]:
    """The class of a task by name; an unknown name is an error listing the known ones."""
    return _TASKS.get(name)


def _param_names(cls: type[DiscoveryTask]) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


def get_task(name: str, **params: Any) -> DiscoveryTask:
    """A task by name with its parameters; an unknown parameter is an error naming the valid ones."""
    cls = get_task_class(name)
    valid = _param_names(cls)
    bad = sorted(set(params) - set(valid))
    if bad:
        raise LpmInputError(
            None,
            f"task {name!r} has no parameter(s) {', '.join(bad)}; valid: {', '.join(valid) or 'none'}",
        )
    return cls(**params)


def describe_task(name: str) -> dict[str, Any]:
    """Name, first docstring line, default parameters and needs of a task."""
    cls = get_task_class(name)
    task = cls()
    doc = (cls.__doc__ or "").strip().splitlines()
    return {
        "name": name,
        "summary": doc[0] if doc else "",
        "params": task.get_params(),
        "needs_model": task.needs_model(),
        "needs_data": task.needs_data(),
    }


__all__ = ["describe_task", "get_task", "get_task_class", "list_tasks", "register_task"]
