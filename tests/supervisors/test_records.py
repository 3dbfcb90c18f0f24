"""``@record`` makes the same class as ``@dataclass(frozen=True, slots=True)``: each test builds
one class both ways from the same body and compares what they do."""

from __future__ import annotations

import abc
import copy
import dataclasses
import inspect
import pickle
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from supervisors.records import record

STOCK = dataclasses.dataclass(frozen=True, slots=True)
PARAMS = ("init", "repr", "eq", "order", "unsafe_hash", "frozen")


def both(body: Callable[[], type[Any]]) -> tuple[type[Any], type[Any]]:
    """The class ``body()`` returns, made once by dataclasses and once by ``record``."""
    return STOCK(body()), record(body())


def shapes() -> dict[str, Callable[[], type[Any]]]:
    def empty() -> type[Any]:
        class Ping:
            """No fields."""

        return Ping

    def one() -> type[Any]:
        class Tick:
            """One field."""

            sent_at: float

        return Tick

    def several() -> type[Any]:
        class Event:
            name: str
            env: str = ""
            data: tuple[tuple[str, Any], ...] = ()
            level: str = "info"
            LEVELS: ClassVar[tuple[str, ...]] = ("info", "warning")

        return Event

    def undocumented() -> type[Any]:
        class Pair:
            left: int
            right: int = 0

        return Pair

    def options() -> type[Any]:
        class Report:
            """Fields left out of the repr, the comparison or the hash."""

            name: str
            secret: str = dataclasses.field(default="", repr=False)
            seen: float = dataclasses.field(default=0.0, compare=False)
            note: str = dataclasses.field(default="", hash=False)
            items: tuple[str, ...] = dataclasses.field(default_factory=tuple)

        return Report

    return {
        "empty": empty,
        "one": one,
        "several": several,
        "undocumented": undocumented,
        "options": options,
    }


SAMPLES: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "empty": ((), {}),
    "one": ((1.5,), {}),
    "several": (("health.changed",), {"env": "prod", "data": (("old", "up"),)}),
    "undocumented": ((1,), {}),
    "options": (("r",), {"secret": "s", "seen": 2.0, "note": "n", "items": ("a",)}),
}


@pytest.fixture(params=sorted(SAMPLES))
def pair(request: pytest.FixtureRequest) -> tuple[Any, Any, str]:
    stock, ours = both(shapes()[request.param])
    args, kwargs = SAMPLES[request.param]
    return stock(*args, **kwargs), ours(*args, **kwargs), request.param


def test_repr_equality_and_hash_are_the_dataclass_ones(pair: tuple[Any, Any, str]) -> None:
    stock, ours, _ = pair
    assert repr(ours) == repr(stock)
    assert hash(ours) == hash(stock)
    twin = copy.copy(ours)
    assert twin == ours
    assert hash(twin) == hash(ours)
    assert twin is not ours
    assert ours != stock  # another class, as with two dataclasses
    assert (ours == object()) is False


def test_unequal_fields_compare_unequal_unless_left_out_of_the_comparison() -> None:
    stock, ours = both(shapes()["options"])
    for cls in (stock, ours):
        assert cls("a", seen=1.0) == cls("a", seen=2.0)
        assert hash(cls("a", note="x")) == hash(cls("a", note="y"))
        assert cls("a") != cls("b")
        assert cls("a", note="x") != cls("a", note="y")


def test_an_instance_refuses_assignment_and_deletion(pair: tuple[Any, Any, str]) -> None:
    stock, ours, _ = pair
    for instance in (stock, ours):
        for name in [f.name for f in dataclasses.fields(instance)]:
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
                setattr(instance, name, 1)
            with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field"):
                delattr(instance, name)
    # Another name is refused too (Python 3.11's own raises a TypeError from super() there).
    with pytest.raises(dataclasses.FrozenInstanceError):
        ours.other = 1


def test_pickle_copy_and_replace_round_trip(pair: tuple[Any, Any, str]) -> None:
    _, ours, _ = pair
    # pickle finds a class by its qualified name: make the one under test findable there.
    cls = type(ours)
    cls.__qualname__ = cls.__name__
    globals()[cls.__name__] = cls
    try:
        assert pickle.loads(pickle.dumps(ours)) == ours
    finally:
        del globals()[cls.__name__]
    assert copy.deepcopy(ours) == ours
    assert dataclasses.replace(ours) == ours
    assert dataclasses.asdict(ours) == {
        f.name: getattr(ours, f.name) for f in dataclasses.fields(ours)
    }


def test_the_class_is_described_as_the_dataclass_is() -> None:
    for name, body in shapes().items():
        stock, ours = both(body)
        assert dataclasses.is_dataclass(ours), name
        assert [f.name for f in dataclasses.fields(ours)] == [
            f.name for f in dataclasses.fields(stock)
        ]
        assert ours.__slots__ == stock.__slots__
        assert ours.__match_args__ == stock.__match_args__
        assert str(inspect.signature(ours)) == str(inspect.signature(stock))
        assert ours.__doc__ == stock.__doc__
        assert ours.__init__.__annotations__ == stock.__init__.__annotations__
        assert ours.__init__.__qualname__ == stock.__init__.__qualname__
        for param in PARAMS:
            assert getattr(ours.__dataclass_params__, param) == getattr(
                stock.__dataclass_params__, param
            ), (name, param)
        assert not hasattr(ours(*SAMPLES[name][0], **SAMPLES[name][1]), "__dict__")


def test_a_class_that_defines_its_own_methods_or_derives_from_a_dataclass_keeps_them() -> None:
    @record
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    @record
    class Child(Named):
        extra: int = 0

    @record
    class Built:
        name: str

        def __init__(self, first: str, last: str) -> None:
            object.__setattr__(self, "name", f"{first} {last}")

    assert repr(Named("a")) == "<a>"
    assert Built("Ada", "Lovelace").name == "Ada Lovelace"
    assert Child("a", 1) == Child("a", 1)
    assert Child("a", 1) != Child("a", 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Child("a").extra = 2  # type: ignore[misc]


def test_match_reads_the_positional_fields() -> None:
    _, ours = both(shapes()["several"])
    match ours("health.changed", "prod"):
        case ours(name, env):  # type: ignore[misc]
            assert (name, env) == ("health.changed", "prod")
        case _:
            pytest.fail("no match")


def test_init_takes_and_refuses_the_same_arguments() -> None:
    stock, ours = both(shapes()["options"])
    assert ours("a").items == ()
    assert ours("a", items=("b",)).items == ("b",)
    assert ours("a").items is stock("a").items
    for args, kwargs in (((), {}), (("a", "b", 1.0, "c", (), "extra"), {}), (("a",), {"x": 1})):
        with pytest.raises(TypeError) as ours_error:
            ours(*args, **kwargs)
        with pytest.raises(TypeError) as stock_error:
            stock(*args, **kwargs)
        assert str(ours_error.value) == str(stock_error.value)


def test_a_factory_is_called_for_each_instance() -> None:
    @record
    class Bag:
        items: list[str] = dataclasses.field(default_factory=list)

    assert Bag().items == []
    assert Bag().items is not Bag().items
    assert "<factory>" in str(inspect.signature(Bag))


def test_post_init_runs_after_the_fields_are_set_and_a_self_field_works() -> None:
    seen: list[Any] = []

    @record
    class Checked:
        self: str
        count: int = 1

        def __post_init__(self) -> None:
            seen.append((self.self, self.count))

    assert Checked("me", 2).self == "me"
    assert seen == [("me", 2)]


def test_a_field_without_a_default_after_one_with_is_refused_as_by_dataclasses() -> None:
    def body() -> type[Any]:
        class Wrong:
            first: int = 0
            second: int

        return Wrong

    with pytest.raises(TypeError) as stock_error:
        STOCK(body())
    with pytest.raises(TypeError) as ours_error:
        record(body())
    assert str(ours_error.value) == str(stock_error.value)


def test_classes_of_one_shape_share_compiled_code_but_not_defaults() -> None:
    @record
    class First:
        name: str = "first"

    @record
    class Second:
        name: str = "second"

    assert First.__init__.__code__ is Second.__init__.__code__
    assert (First().name, Second().name) == ("first", "second")


def test_a_base_that_declares_the_methods_abstract_is_satisfied_as_by_dataclasses() -> None:
    def body() -> type[Any]:
        class Shown(abc.ABC):
            @abc.abstractmethod
            def __repr__(self) -> str: ...

            @abc.abstractmethod
            def __hash__(self) -> int: ...

        class Concrete(Shown):
            name: str

        return Concrete

    stock, ours = both(body)
    assert ours.__abstractmethods__ == stock.__abstractmethods__ == frozenset()
    assert repr(ours("a")) == repr(stock("a"))


def test_the_methods_belong_to_the_class_module_and_pickle_by_reference() -> None:
    # A method is found again by its module and qualified name, as the dataclass's are.
    def body() -> type[Any]:
        class Module:
            name: str

        Module.__qualname__ = "Module"  # findable by pickle here, once in globals()
        return Module

    stock, ours = both(body)
    globals()["Module"] = ours
    try:
        for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
            method = vars(ours)[name]
            assert method.__module__ == vars(stock)[name].__module__ == __name__, name
            assert pickle.loads(pickle.dumps(method)) is method, name
        for name in ("__getstate__", "__setstate__"):
            assert vars(ours)[name] is vars(stock)[name], name
    finally:
        del globals()["Module"]
