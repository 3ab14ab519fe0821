"""The event base class shared by all protocols.

Events are small immutable value objects.  Subclasses list their fields in
``_fields`` (and declare them in ``__slots__``); this base supplies equality, hashing, ``repr`` and
immutability.  Parsers build events through :func:`_make_event`, which skips
the validation that user-facing constructors perform on untrusted input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

__all__ = ["Event"]

_E = TypeVar("_E", bound="Event")
_setattr = object.__setattr__


class Event:
    """Base class of every protocol event.

    Events compare equal when they are of the same class and all fields are
    equal; they are hashable when their fields are, and they cannot be
    changed after construction.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _field_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._field_values() == other._field_values()

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((type(self), self._field_values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} events are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} events are immutable")

    def __copy__(self: _E) -> _E:
        return self

    def __deepcopy__(self: _E, memo: dict[int, Any]) -> _E:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_event, (type(self), *self._field_values()))


def _make_event(cls: type[_E], *values: Any) -> _E:
    """Build an event from already-validated field values (parsers, pickle)."""
    event = cls.__new__(cls)
    for name, value in zip(cls._fields, values, strict=True):
        _setattr(event, name, value)
    return event


def _event_builder(cls: type[_E]) -> Callable[..., _E]:
    """A fast constructor for *cls* taking its fields positionally, unvalidated.

    Parsers create several events per message; going straight to the slot
    descriptors skips ``__init__`` validation (the parser has validated
    the bytes) and the generic loop of :func:`_make_event`.
    """
    new = object.__new__
    setters = tuple(getattr(cls, name).__set__ for name in cls._fields)
    if len(setters) == 1:
        (set0,) = setters

        def build1(a: Any) -> _E:
            event = new(cls)
            set0(event, a)
            return event

        return build1
    if len(setters) == 3:
        set0, set1, set2 = setters

        def build3(a: Any, b: Any, c: Any) -> _E:
            event = new(cls)
            set0(event, a)
            set1(event, b)
            set2(event, c)
            return event

        return build3
    if len(setters) == 4:
        set0, set1, set2, set3 = setters

        def build4(a: Any, b: Any, c: Any, d: Any) -> _E:
            event = new(cls)
            set0(event, a)
            set1(event, b)
            set2(event, c)
            set3(event, d)
            return event

        return build4
    return lambda *values: _make_event(cls, *values)
