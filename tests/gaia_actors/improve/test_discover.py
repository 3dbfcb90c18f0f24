"""Finding a target's tests as pytest does, and saying exactly why they could not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia_actors.improve.discover import collected_modules, find_tests, pytest_config, src_layout
from gaia_actors.improve.testing import PythonTestOptions, RunStatus, run_python_tests
from tests.gaia_actors.improve.conftest import FAST_PYTEST_ENV, snapshot, write

FAST = PythonTestOptions(env=FAST_PYTEST_ENV)


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("pytest.ini", "", "pytest.ini"),
        (".pytest.ini", "[pytest]\n", ".pytest.ini"),
        ("conftest.py", "", "conftest.py"),
        ("tox.ini", "[tox]\nenvlist = py\n\n[pytest]\naddopts = -q\n", "tox.ini [pytest]"),
        ("setup.cfg", "[tool:pytest]\n", "setup.cfg [tool:pytest]"),
        (
            "pyproject.toml",
            "[tool.pytest.ini_options]\n",
            "pyproject.toml [tool.pytest.ini_options]",
        ),
    ],
)
def test_each_of_pytests_config_files_is_found(
    tmp_path: Path, name: str, text: str, where: str
) -> None:
    write(tmp_path, name, text)
    assert pytest_config(tmp_path) == where
    assert find_tests(tmp_path, []).kind == "pytest"


def test_a_section_name_inside_other_text_is_not_a_section(tmp_path: Path) -> None:
    write(tmp_path, "tox.ini", "[tox]\n# tests run with [pytest] below, some day\n")
    write(tmp_path, "setup.cfg", "[flake8]\nexclude = [tool:pytest]\n")
    assert pytest_config(tmp_path) == ""
    assert find_tests(tmp_path, ["lib.py"]).kind == "none"


def test_test_files_without_any_configuration_make_a_pytest_target(tmp_path: Path) -> None:
    files = ["pkg/core.py", "test/test_core.py", "test/helpers.py", "pkg/io_test.py", "tests.py"]
    plan = find_tests(tmp_path, files)
    assert plan.kind == "pytest"
    assert plan.reason == "test files pytest collects: pkg/io_test.py, test/test_core.py"
    assert collected_modules(["a/test_x.py", "a/testx.py", "x_test.py", "contest.py"]) == [
        "a/test_x.py",
        "x_test.py",
    ]


def test_a_tree_without_tests_says_what_was_looked_for(tmp_path: Path) -> None:
    plan = find_tests(tmp_path, ["lib.py"])
    assert plan.kind == "none"
    assert "test_*.py" in plan.reason
    assert "[tool:pytest]" in plan.reason


def test_src_layout_is_recognised_by_a_package_under_src(tmp_path: Path) -> None:
    assert src_layout(tmp_path) == ""
    write(tmp_path, "src/README.txt", "not code\n")
    assert src_layout(tmp_path) == ""
    write(tmp_path, "src/pkg/__init__.py", "")
    assert src_layout(tmp_path) == "src"


def test_each_test_module_that_cannot_import_is_named_with_its_error(tmp_path: Path) -> None:
    write(tmp_path, "tests/test_ok.py", "def test_fine():\n    assert True\n")
    write(tmp_path, "tests/test_dep.py", "import nosuchdependency\n\ndef test_x():\n    pass\n")
    write(tmp_path, "tests/test_syntax.py", "def test_x(:\n    pass\n")
    before = snapshot(tmp_path)

    run = run_python_tests(tmp_path, timeout=60, options=FAST)

    problems = {p.file: p.reason for p in run.problems}
    assert problems.keys() == {"tests/test_dep.py", "tests/test_syntax.py"}
    assert (
        problems["tests/test_dep.py"] == "ModuleNotFoundError: No module named 'nosuchdependency'"
    )
    assert "SyntaxError" in problems["tests/test_syntax.py"]
    assert run.status is RunStatus.FAILED  # collection errors are errors, not a broken run
    assert run.junit is not None
    assert run.junit.passed == 1  # the rest of the suite still ran
    assert run.reason.startswith("2 file(s) could not be imported: ")
    assert snapshot(tmp_path) == before


def test_a_conftest_that_cannot_import_is_named(tmp_path: Path) -> None:
    write(tmp_path, "tests/conftest.py", "import missing_plugin_dep\n")
    write(tmp_path, "tests/test_a.py", "def test_a():\n    pass\n")

    run = run_python_tests(tmp_path, timeout=60, options=FAST)

    assert run.status is RunStatus.ERROR
    assert [(p.file, p.reason) for p in run.problems] == [
        ("tests/conftest.py", "ModuleNotFoundError: No module named 'missing_plugin_dep'")
    ]
    assert "tests/conftest.py" not in run.reason  # the summary counts; the list names
    assert "missing_plugin_dep" in run.reason


def test_a_usage_error_in_the_targets_own_options_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "pytest.ini", "[pytest]\naddopts = --cov=pkg\n")  # pytest-cov not loaded
    write(tmp_path, "test_a.py", "def test_a():\n    pass\n")

    run = run_python_tests(tmp_path, timeout=60, options=FAST)

    assert run.status is RunStatus.ERROR
    assert len(run.problems) == 1
    assert run.problems[0].file == ""
    assert run.problems[0].reason.startswith("pytest usage error: ")
    assert "--cov" in run.problems[0].reason
