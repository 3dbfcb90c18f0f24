"""``@record``: a frozen, slotted dataclass, as ``@dataclass(frozen=True, slots=True)`` makes
one, for a fraction of the CPU.

For each such class the standard library compiles six methods from source (``__init__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``: ~0.7 ms a class on
Python 3.11), and a process that imports the application creates a few hundred of them. Here
``dataclasses`` reads the fields and makes the slotted class; five of the methods are closures
over the tuple of field names (they do the same thing for every class), and ``__init__`` is
compiled once per shape (the field names, which take a default factory, whether the class has
``__post_init__``), its defaults set on each class's copy, as ``dataclasses`` would write it.

What the class does is unchanged: its ``__init__`` signature, annotations and defaults,
equality and hashing over the compared fields, assignment and deletion refused with
``dataclasses.FrozenInstanceError``, the repr, pickling and copying, ``__match_args__``,
``__doc__``, and ``__dataclass_fields__``/``__dataclass_params__``, so ``fields``,
``replace``, ``asdict`` and ``is_dataclass`` see the frozen dataclass it is. A class outside
that common shape (its own ``__init__``, ``__eq__``, ``__hash__``, ``__repr__``, attribute or
pickling methods, a dataclass base, an ``InitVar``, a keyword-only or ``init=False`` field) is
made by ``dataclasses`` itself.
"""

from __future__ import annotations

import abc
import dataclasses
import inspect
import operator
import reprlib
import sys
import threading
from collections.abc import Callable, Sequence
from types import CodeType
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_STOCK = dataclasses.dataclass(frozen=True, slots=True)
# What dataclasses records of a frozen, slotted dataclass, taken from one it made so that it
# matches this Python's own.
_FROZEN = vars(_STOCK(type("_Frozen", (), {})))
_FROZEN_PARAMS = _FROZEN["__dataclass_params__"]
# Pickling a slotted class whose __setattr__ refuses: dataclasses' own functions, shared by
# every such class.
_GETSTATE, _SETSTATE = _FROZEN["__getstate__"], _FROZEN["__setstate__"]
# Methods a class may define itself; such a class is left to dataclasses, which knows how
# each one combines with the generated ones.
_OWN_METHODS = frozenset(
    {
        "__init__",
        "__eq__",
        "__hash__",
        "__repr__",
        "__setattr__",
        "__delattr__",
        "__getstate__",
        "__setstate__",
    }
)
_UNSUPPORTED_ANNOTATIONS = ("InitVar", "KW_ONLY")

Shape = tuple[tuple[str, ...], tuple[bool, ...], bool]
_INIT_CODE: dict[Shape, CodeType] = {}
_INIT_CODE_LOCK = threading.Lock()


class _Factory:
    """A default the caller did not give: ``__init__`` calls the field's factory instead."""

    def __repr__(self) -> str:
        return "<factory>"  # as in the signature dataclasses writes


_HAS_DEFAULT_FACTORY = _Factory()


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen, slotted dataclass (``@dataclass(frozen=True, slots=True)``)."""
    if not _common_shape(cls):
        return _STOCK(cls)
    undocumented = not cls.__doc__
    made: Any = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(cls)
    fields = dataclasses.fields(made)
    names = tuple(f.name for f in fields)
    compared = [f.name for f in fields if f.compare]
    hashed = [f.name for f in fields if f.hash or (f.hash is None and f.compare)]
    methods = (
        _init(made, fields),
        _repr([f.name for f in fields if f.repr]),
        _eq(_values(compared)),
        _hash(_values(hashed)),
        *_frozen(made, names),
    )
    for method in methods:
        # The class's module and name, as dataclasses gives them: pickle finds it there.
        method.__module__ = made.__module__
        method.__qualname__ = f"{made.__qualname__}.{method.__name__}"
        setattr(made, method.__name__, method)
    made.__getstate__ = _GETSTATE
    made.__setstate__ = _SETSTATE
    made.__dataclass_params__ = _FROZEN_PARAMS
    # The class was made before its methods: a method an abstract base declares is done now.
    abc.update_abstractmethods(made)
    if undocumented:
        made.__doc__ = made.__name__ + _text_signature(made)
    return made  # type: ignore[no-any-return]


def _common_shape(cls: type[Any]) -> bool:
    own = vars(cls)
    if _OWN_METHODS.intersection(own):
        return False
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        return False
    for name, annotation in own.get("__annotations__", {}).items():
        if any(word in str(annotation) for word in _UNSUPPORTED_ANNOTATIONS):
            return False
        value = own.get(name)
        if isinstance(value, dataclasses.Field) and (not value.init or value.kw_only is True):
            return False
    return True


def _text_signature(cls: type[Any]) -> str:
    # dataclasses' own class docstring when the class has none: its name and signature.
    try:
        return str(inspect.signature(cls)).replace(" -> None", "")
    except (TypeError, ValueError):
        return ""


def _init(cls: type[Any], fields: Sequence[dataclasses.Field[Any]]) -> Callable[..., None]:
    defaults: list[Any] = []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            defaults.append(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            defaults.append(_HAS_DEFAULT_FACTORY)
        elif defaults:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
    factories = [f.default_factory for f in fields if f.default_factory is not dataclasses.MISSING]
    shape = (
        tuple(f.name for f in fields),
        tuple(f.default_factory is not dataclasses.MISSING for f in fields),
        hasattr(cls, "__post_init__"),
    )
    namespace: dict[str, Any] = {}
    module = sys.modules.get(cls.__module__)  # as dataclasses: the class's module's globals
    exec(_init_code(shape), {} if module is None else vars(module), namespace)
    init: Callable[..., None] = namespace["__create_fn__"](object, _HAS_DEFAULT_FACTORY, *factories)
    init.__defaults__ = tuple(defaults) or None
    init.__annotations__ = {f.name: f.type for f in fields} | {"return": None}
    return init


def _init_code(shape: Shape) -> CodeType:
    with _INIT_CODE_LOCK:
        code = _INIT_CODE.get(shape)
        if code is None:
            code = _INIT_CODE[shape] = compile(_init_source(*shape), "<record __init__>", "exec")
        return code


def _init_source(names: tuple[str, ...], factory: tuple[bool, ...], post_init: bool) -> str:
    """``__create_fn__(object, sentinel, *factories) -> __init__``, the body dataclasses
    writes for a frozen class: each field set through ``object.__setattr__``."""
    me = "__dataclass_self__" if "self" in names else "self"
    made = [n for n, has in zip(names, factory, strict=True) if has]
    outer = ", ".join(
        ["__dataclass_builtins_object__", "_HAS_DEFAULT_FACTORY"]
        + [f"__dataclass_factory_{n}__" for n in made]
    )
    body = []
    for name, has_factory in zip(names, factory, strict=True):
        value = name
        if has_factory:
            value = f"__dataclass_factory_{name}__() if {name} is _HAS_DEFAULT_FACTORY else {name}"
        body.append(f"__dataclass_builtins_object__.__setattr__({me}, {name!r}, {value})")
    if post_init:
        body.append(f"{me}.__post_init__()")
    lines = "\n".join(f"  {line}" for line in body or ["pass"])
    return (
        f"def __create_fn__({outer}):\n"
        f" def __init__({', '.join([me, *names])}):\n{lines}\n"
        " return __init__\n"
    )


def _values(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function from an instance to the tuple of its ``names`` fields, in that order."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        (name,) = names
        return lambda obj: (getattr(obj, name),)
    return lambda obj: ()


def _repr(names: Sequence[str]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _eq(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _frozen(cls: type[Any], names: tuple[str, ...]) -> tuple[Callable[..., None], ...]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__
