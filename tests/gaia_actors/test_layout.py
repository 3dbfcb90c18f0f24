"""An environment's actor name, and the environment read back from an actor's name."""

from __future__ import annotations

import pytest

from gaia_actors.layout import actor_name, env_of


@pytest.mark.parametrize("env", ["prod", "staging", "a.b"])
def test_the_environment_is_read_back_from_its_actor_name(env: str) -> None:
    assert env_of(actor_name(env)) == env


@pytest.mark.parametrize("actor", ["monitor", "environments", "improve.worker.0", "environment"])
def test_other_actors_name_no_environment(actor: str) -> None:
    assert env_of(actor) is None
