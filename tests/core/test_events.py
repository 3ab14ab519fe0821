"""The Event base class: value semantics, immutability, copying, pickling."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from protomata._core import Event


class Ping(Event):
    __slots__ = ("count", "payload")
    _fields = ("payload", "count")

    payload: Any
    count: int

    def __init__(self, payload: Any, count: int = 0) -> None:
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "count", count)


class Pong(Event):
    """Same fields as Ping, different class."""

    __slots__ = ("count", "payload")
    _fields = ("payload", "count")

    def __init__(self, payload: Any, count: int = 0) -> None:
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "count", count)


class Empty(Event):
    __slots__ = ()


def test_equality_is_by_class_and_fields() -> None:
    assert Ping(b"x", 1) == Ping(b"x", 1)
    assert (Ping(b"x", 1) != Ping(b"x", 1)) is False  # __ne__ itself
    assert Ping(b"x", 1) != Ping(b"x", 2)
    assert Ping(b"x", 1) != Ping(b"y", 1)
    assert Ping(b"x", 1) != Pong(b"x", 1)
    assert Empty() == Empty()


def test_comparison_with_other_types_defers() -> None:
    ping = Ping(b"x")
    assert ping.__eq__(object()) is NotImplemented
    assert ping.__ne__(object()) is NotImplemented
    assert ping != (b"x", 0)
    assert (ping == (b"x", 0)) is False
    assert ping != "Ping"


def test_hash_follows_equality() -> None:
    assert hash(Ping(b"x", 1)) == hash(Ping(b"x", 1))
    assert len({Ping(b"x", 1), Ping(b"x", 1), Ping(b"x", 2), Pong(b"x", 1)}) == 3
    with pytest.raises(TypeError):
        hash(Ping(bytearray(b"x")))  # unhashable field, unhashable event


def test_repr_lists_fields_in_order() -> None:
    assert repr(Ping(b"x", 3)) == "Ping(payload=b'x', count=3)"
    assert repr(Empty()) == "Empty()"
    assert repr(Event()) == "Event()"


def test_events_are_immutable() -> None:
    ping = Ping(b"x", 1)
    with pytest.raises(AttributeError, match="immutable"):
        ping.count = 2  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        ping.other = 2  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="immutable"):
        del ping.count
    assert ping.count == 1


def test_events_have_no_instance_dict() -> None:
    assert not hasattr(Ping(b"x"), "__dict__")
    assert not hasattr(Empty(), "__dict__")


def test_copy_and_deepcopy_return_the_same_object() -> None:
    ping = Ping([1, 2], 1)
    assert copy.copy(ping) is ping
    assert copy.deepcopy(ping) is ping
    assert copy.deepcopy({"k": ping})["k"] is ping


def test_pickle_round_trip() -> None:
    ping = Ping(b"data", 7)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        clone = pickle.loads(pickle.dumps(ping, protocol))
        assert type(clone) is Ping
        assert clone == ping
        assert clone is not ping
        with pytest.raises(AttributeError):
            clone.count = 1  # type: ignore[misc]


def test_reduce_rebuilds_without_calling_init() -> None:
    class Strict(Event):
        __slots__ = ("value",)
        _fields = ("value",)

        def __init__(self, value: int) -> None:
            if value < 0:
                raise ValueError("user-facing validation")
            object.__setattr__(self, "value", value)

    event = Strict(1)
    rebuild, args = event.__reduce__()
    assert args == (Strict, 1)
    clone = rebuild(*args)
    assert clone == event
    # Parser-made events skip user validation (they were validated as bytes).
    weird = rebuild(Strict, -5)
    assert weird.value == -5


# -- the parsers' fast constructor ----------------------------------------------------


def _fields_class(n: int) -> type[Event]:
    names = tuple(f"f{i}" for i in range(n))
    return type(f"Event{n}", (Event,), {"__slots__": names, "_fields": names})


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5])
def test_event_builder_sets_fields_positionally(n: int) -> None:
    from protomata._core._events import _event_builder, _make_event

    cls = _fields_class(n)
    build = _event_builder(cls)
    values = [object() for _ in range(n)]
    event = build(*values)
    assert type(event) is cls
    assert [getattr(event, f"f{i}") for i in range(n)] == values
    assert event == _make_event(cls, *values)
    with pytest.raises(AttributeError):
        event.f0 = 1  # type: ignore[attr-defined]


def test_event_builder_arity_is_checked() -> None:
    from protomata._core._events import _event_builder, _make_event

    with pytest.raises(TypeError):
        _event_builder(_fields_class(3))(1, 2)  # type: ignore[call-arg]
    with pytest.raises((TypeError, ValueError)):
        _make_event(_fields_class(2), 1)
