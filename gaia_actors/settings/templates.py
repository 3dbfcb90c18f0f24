"""Command templates: a field whose metadata names its placeholders is checked at load, and
expanded at run time by ``expand`` with the same rules: ``{name}`` is a placeholder, ``{{``
and ``}}`` are literal braces (a shell's ``${{VAR}}``, JSON in an argument)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from gaia_actors.errors import ConfigError, TemplateError
from gaia_actors.settings.fields import PLACEHOLDERS

_TEMPLATE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def expand(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` and ``{{``/``}}`` by one
    brace. TemplateError names an unknown placeholder (and those that exist) or a lone brace."""

    def one(match: re.Match[str]) -> str:
        text, name = match[0], match[1]
        if text in ("{{", "}}"):
            return text[0]
        if name is None:
            raise TemplateError(f"a lone {text!r} (write {text * 2!r} for a literal brace)")
        if name not in values:
            known = ", ".join(f"{{{k}}}" for k in values) or "none"
            raise TemplateError(
                f"unknown placeholder {text!r}; placeholders: {known} "
                "(write {{ and }} for literal braces)"
            )
        return values[name]

    return _TEMPLATE.sub(one, template)


def check_templates(where: str, key: str, section: Any) -> None:
    """Every template field of ``section`` (metadata PLACEHOLDERS) expands with its names."""
    for f in dataclasses.fields(section):
        names = f.metadata.get(PLACEHOLDERS)
        if names is None:
            continue
        values = dict.fromkeys(names, "")
        for path, text in _strings(getattr(section, f.name), f"{key}.{f.name}"):
            try:
                expand(text, values)
            except TemplateError as exc:
                raise ConfigError(where, path, f"{exc}, in {text!r}") from None


def _strings(value: Any, key: str) -> list[tuple[str, str]]:
    """The strings in a template setting (a string, an argv, argvs, a table's values)."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _strings(v, f"{key}.{k}")]
    return [pair for i, v in enumerate(value) for pair in _strings(v, f"{key}[{i}]")]
