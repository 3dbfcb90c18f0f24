"""A finding's identity ignores comment leaders, block-comment ends and whitespace layout."""

from __future__ import annotations

import pytest

from gaia_actors.improve.findings import normalise_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# TODO: fix   this\tlater", "TODO: fix this later"),
        ("## FIXME", "FIXME"),
        ("// TODO go", "TODO go"),
        ("/* TODO block */", "TODO block"),
        ("/** FIXME doc **/  \n", "FIXME doc"),
        ("  * TODO inside a block comment", "TODO inside a block comment"),
        ("x */", "x"),
        ("*/", "/"),  # the leader takes the star: no block end is left
        ("# a */ b */", "a */ b"),  # only the last end goes
        ("#\u00a0TODO\u2003wide\u00a0", "TODO wide"),  # Unicode whitespace collapses too
        ("", ""),
        ("#", ""),
    ],
)
def test_normalise_text_strips_leaders_and_block_ends_and_collapses_whitespace(
    text: str, expected: str
) -> None:
    assert normalise_text(text) == expected
