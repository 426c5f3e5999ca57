"""One registry shape: built-ins loaded when asked, one name once, unknown names listed."""

from __future__ import annotations

import pytest

from lpm._utils.registry import Registry, is_subclass_of
from lpm.errors import LpmError, LpmInputError


class Base:
    pass


class Thing(Base):
    pass


def _registry(*, ordered: bool) -> Registry[type[Base]]:
    return Registry(
        kind="thing",
        group="lpm.tests_no_such_group",
        builtins={"zeta": f"{__name__}:Thing", "alpha": f"{__name__}:Base"},
        accepts=is_subclass_of(Base),
        expected="a Base subclass",
        ordered=ordered,
    )


def test_builtins_load_by_target_and_names_are_listed_in_the_asked_order() -> None:
    assert _registry(ordered=False).names() == ["alpha", "zeta"]
    ordered = _registry(ordered=True)
    ordered.register("beta", Thing)
    assert ordered.names() == ["zeta", "alpha", "beta"]
    assert ordered.get("zeta") is Thing and ordered.get("beta") is Thing


def test_a_taken_name_a_wrong_kind_and_an_unknown_name_are_errors() -> None:
    reg = _registry(ordered=False)
    with pytest.raises(LpmError, match="thing name 'zeta' is already registered"):
        reg.register("zeta", Thing)
    with pytest.raises(LpmError, match="is not a Base subclass"):
        reg.register("other", int)  # type: ignore[arg-type]
    with pytest.raises(LpmInputError, match=r"unknown thing 'nope'; available: alpha, zeta$"):
        reg.get("nope")


def test_builtins_may_be_objects_given_by_a_function() -> None:
    reg: Registry[str] = Registry(
        kind="word",
        group="lpm.tests_no_such_group",
        builtins=lambda: {"a": "apple"},
        accepts=lambda item: isinstance(item, str),
        expected="text",
    )
    assert reg.get("a") == "apple" and reg.names() == ["a"]
