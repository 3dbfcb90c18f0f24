"""The one-pass search reports every occurrence of every needle, as repeated ``find`` would."""

from __future__ import annotations

import pytest

from gaia_actors.improve import bytesearch


def every_find(needles: tuple[bytes, ...], data: bytes) -> list[int]:
    found = []
    for needle in needles:
        pos = data.find(needle)
        while pos >= 0:
            found.append(pos)
            pos = data.find(needle, pos + 1)
    return sorted(found)


@pytest.mark.parametrize(
    ("needles", "data"),
    [
        ((b"TODO", b"FIXME"), b"# TODO: x\ns = 'FIXME'  # FIXMETODO\n"),
        ((b"XXX",), b"# XXXX and XXXXX\n"),  # a needle overlapping itself
        ((b"TODO", b"TODOS"), b"# TODOS TODO\n"),  # one needle inside another
        ((b"AB", b"BC"), b"ABC ABC\n"),  # one needle's end begins the other
        ((b'"""', b"'''", b"\\\n"), b'x = """a\\\n"""\'\'\'\'\n'),
    ],
)
def test_find_all_reports_every_occurrence(needles: tuple[bytes, ...], data: bytes) -> None:
    assert bytesearch.find_all(needles, data) == every_find(needles, data)
    assert bytesearch.contains_any(needles, data)


def test_find_all_before_an_offset_counts_occurrences_that_start_before_it() -> None:
    data = b"a TODO b TODO c FIXME"
    assert bytesearch.find_all((b"TODO", b"FIXME"), data, before=9) == [2]
    assert bytesearch.find_all((b"TODO", b"FIXME"), data, before=10) == [2, 9]
    assert bytesearch.find_all((b"TODO", b"FIXME"), data, before=100) == [2, 9, 16]


def test_contains_any_is_false_without_a_needle() -> None:
    assert not bytesearch.contains_any((b"TODO", b"FIXME"), b"# todo, fixme, TODDO\n")


def test_an_empty_needle_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        bytesearch.find_all((b"TODO", b""), b"TODO")
