"""First releases of environments built from one source: one build, imported by the rest."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gaia_actors.environments.builds import BuildError, first_release
from gaia_actors.environments.releases import Release, list_releases
from tests.conftest import wait_until
from tests.gaia_actors.environments.conftest import EnvTree, demo_source, free_port
from tests.gaia_actors.environments.test_releases import IGNORE, PY, make_source

# Leaves the pid of the process that built the release in it: one build, one pid.
BUILD = (PY, "-c", "import os; open('BUILT_BY', 'w').write(str(os.getpid()))")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "src")


def releases_of(tmp_path: Path, *envs: str) -> list[Path]:
    return [tmp_path / "environments" / env / "releases" for env in envs]


def first(
    source: Path,
    tmp_path: Path,
    env: str,
    others: tuple[str, ...],
    build: tuple[str, ...],
    *,
    builders: list[str] | None = None,
) -> tuple[Release, bool]:
    """``env``'s first release; ``builders`` gets ``env`` if it is the one that builds."""
    [mine] = releases_of(tmp_path, env)
    mine.mkdir(parents=True, exist_ok=True)
    elsewhere = releases_of(tmp_path, *others)
    lock_dir = tmp_path / "environments"
    found = [] if builders is None else builders
    return first_release(
        source,
        mine,
        elsewhere,
        lock_dir,
        ignore=IGNORE,
        build_argv=build,
        timeout=60,
        meanwhile=lambda: found.append(env),
    )


def test_a_second_environment_imports_the_build_of_the_first(source: Path, tmp_path: Path) -> None:
    builders: list[str] = []
    dev, dev_imported = first(source, tmp_path, "dev", ("staging",), BUILD, builders=builders)
    staging, staging_imported = first(
        source, tmp_path, "staging", ("dev",), BUILD, builders=builders
    )
    assert (dev_imported, staging_imported) == (False, True)
    assert builders == ["dev"]  # what overlaps the build runs in the one that builds
    assert staging.id == dev.id
    assert staging.path == tmp_path / "environments" / "staging" / "releases" / dev.id
    assert (staging.path / "BUILT_BY").read_text() == (dev.path / "BUILT_BY").read_text()
    assert staging.build == dev.build  # the build's record comes with it


def test_another_build_command_or_other_content_is_built_anew(source: Path, tmp_path: Path) -> None:
    dev, _ = first(source, tmp_path, "dev", (), BUILD)
    other = (*BUILD, "--another")
    staging, staging_imported = first(source, tmp_path, "staging", ("dev",), other)
    assert not staging_imported
    assert (staging.path / "BUILT_BY").read_text() != (dev.path / "BUILT_BY").read_text()
    (source / "pkg" / "core.py").write_text("VALUE = 2\n")
    prod, prod_imported = first(source, tmp_path, "prod", ("dev", "staging"), BUILD)
    assert not prod_imported
    assert prod.content_hash != dev.content_hash


def test_environments_starting_together_run_one_build(source: Path, tmp_path: Path) -> None:
    envs = tuple(f"env{i}" for i in range(6))
    together = threading.Barrier(len(envs), timeout=30)
    results: dict[str, tuple[Release, bool]] = {}
    errors: list[BaseException] = []
    builders: list[str] = []

    def start(env: str) -> None:
        try:
            together.wait()
            others = tuple(e for e in envs if e != env)
            results[env] = first(source, tmp_path, env, others, BUILD, builders=builders)
        except BaseException as exc:  # reported by the asserts below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(env,)) for env in envs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(imported for _, imported in results.values()) == [False] + [True] * 5
    assert builders == [env for env, (_, imported) in results.items() if not imported]
    assert len({release.id for release, _ in results.values()}) == 1
    assert len({(r.path / "BUILT_BY").read_text() for r, _ in results.values()}) == 1
    for env, (release, _) in results.items():
        assert [r.id for r in list_releases(tmp_path / "environments" / env)] == [release.id]


def test_a_failed_build_is_not_shared_each_environment_reports_its_own(
    source: Path, tmp_path: Path
) -> None:
    failing = (PY, "-c", "import sys; print('broken'); sys.exit(3)")
    with pytest.raises(BuildError, match="broken"):
        first(source, tmp_path, "dev", ("staging",), failing)
    with pytest.raises(BuildError, match="broken"):
        first(source, tmp_path, "staging", ("dev",), failing)
    assert [p for p in (tmp_path / "environments").rglob("*") if p.suffix == ".tmp"] == []


def test_a_tree_of_environments_of_one_source_runs_one_build(
    env_tree: Callable[..., EnvTree], tmp_path: Path
) -> None:
    source = demo_source(tmp_path / "demo")
    names = ("dev", "staging", "prod")
    tree = env_tree(
        {env: {"port": free_port(), "source": str(source), "build": list(BUILD)} for env in names}
    )
    statuses = [tree.wait_healthy(env) for env in names]
    assert len({status.release for status in statuses}) == 1
    built_by = {(tree.layout(env).current / "BUILT_BY").read_text() for env in names}
    assert len(built_by) == 1
    initialised = [
        tree.events.wait_for("environment.initialised", lambda e, env=env: e.env == env)
        for env in names
    ]
    assert {event.get("release") for event in initialised} == {statuses[0].release}


def test_a_state_directory_inside_the_source_is_never_part_of_a_release(tmp_path: Path) -> None:
    """A config beside the service it runs keeps its state inside the source: what other
    environments write there meanwhile (their releases, being copied) is not copied, so
    environments starting together still share one build, of the service's files only."""
    source = make_source(tmp_path / "svc")
    state = source / "state"  # not in IGNORE
    (state / "gaia.db").parent.mkdir()
    (state / "gaia.db").write_text("the store")
    envs = ("dev", "staging", "prod")
    together = threading.Barrier(len(envs), timeout=30)
    results: dict[str, tuple[Release, bool] | BaseException] = {}

    def start(env: str) -> None:
        mine = state / "environments" / env / "releases"
        mine.mkdir(parents=True)
        others = [state / "environments" / e / "releases" for e in envs if e != env]
        together.wait()
        try:
            results[env] = first_release(
                source,
                mine,
                others,
                state / "environments",
                ignore=IGNORE,
                build_argv=BUILD,
                timeout=60,
                keep_out=(state,),
            )
        except BaseException as exc:  # reported by the asserts below
            results[env] = exc

    threads = [threading.Thread(target=start, args=(env,)) for env in envs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done = [r for r in results.values() if isinstance(r, tuple)]
    assert len(done) == len(envs), results
    assert sorted(imported for _, imported in done) == [False, True, True]
    [release] = {release.path.name: release for release, _ in done}.values()
    assert not (release.path / "state").exists()
    assert release.files == 5  # the source's files that IGNORE keeps, none of the state


def test_an_environment_with_another_build_command_does_not_wait_for_that_build(
    source: Path, tmp_path: Path
) -> None:
    """A build it cannot share is not waited for: a slow or hung build of one environment
    holds up no environment built by another command (each has its own start timeout)."""
    gate = tmp_path / "open"
    slow = (PY, "-c", f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.01)")
    dev_result: list[tuple[Release, bool]] = []
    dev = threading.Thread(
        target=lambda: dev_result.append(first(source, tmp_path, "dev", ("staging",), slow))
    )
    dev.start()
    try:
        [building] = releases_of(tmp_path, "dev")
        wait_until(lambda: building.is_dir() and any(building.iterdir()))  # its build began
        staging, imported = first(source, tmp_path, "staging", ("dev",), BUILD)
        assert not imported
        assert dev.is_alive()  # its build still waits for the gate
    finally:
        gate.touch()
        dev.join(30)
    [(dev_release, _)] = dev_result
    assert dev_release.build is not None
    assert dev_release.build.argv == slow
    assert staging.build is not None
    assert staging.build.argv == BUILD
