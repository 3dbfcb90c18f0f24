"""--apply as a careful engineer: a commit on a new branch of a git target (the checked-out
branch and the working tree untouched), the patch file, and nothing applied to a changed tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia_actors.improve import history
from gaia_actors.improve.delivery import TreeState
from tests.gaia_actors.improve.conftest import git, snapshot, write
from tests.gaia_actors.improve.support import config, improve_tree

MODULE = "import os\n\n\ndef add(a,b):\n    return a + b\n"
FIXED = "def add(a, b):\n    return a + b\n"
TESTS = "from mod import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
RUFF_CONFIG = "[tool.ruff.lint]\nselect = ['F401']\n\n[tool.ruff.format]\n"
# The operator's own test environment: no plugins, no git identity of ours leaking in.
SETTINGS = 'linters = ["ruff"]\n'


def worktree(root: Path) -> dict[str, str]:
    """The work tree's files and git's index (the object store and refs may grow)."""
    return {
        k: v for k, v in snapshot(root).items() if not k.startswith(".git/") or k == ".git/index"
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git project that chose ruff (F401) and its formatter, all committed on main."""
    root = tmp_path / "repo"
    write(root, "pyproject.toml", RUFF_CONFIG)
    write(root, "mod.py", MODULE)
    write(root, "test_mod.py", TESTS)
    write(root, ".gitignore", "__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_apply_on_git_commits_the_fix_on_a_new_branch_and_touches_nothing_checked_out(
    tmp_path: Path, repo: Path
) -> None:
    head, files = git(repo, "rev-parse", "HEAD"), worktree(repo)
    with improve_tree(config(tmp_path, repo, SETTINGS)) as tree:
        cycle_id = tree.cycle(apply=True)
        result = history.show(cycle_id)

    fixes = result["fixes"]
    branch = f"gaia-improve/cycle-{cycle_id}"
    assert (fixes["status"], fixes["applied"], fixes["branch"]) == ("verified", True, branch)
    # The checked-out branch, HEAD, the index and the working tree are as they were.
    assert git(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    assert worktree(repo) == files
    # The branch holds one commit on top of the commit the cycle read, with the fix only.
    assert git(repo, "rev-parse", f"{branch}^") == head
    assert git(repo, "rev-parse", branch) == fixes["commit"]
    assert git(repo, "diff", "--name-only", head, branch) == "mod.py"
    assert git(repo, "show", f"{branch}:mod.py") + "\n" == FIXED
    message = git(repo, "log", "-1", "--format=%B", branch)
    assert message.startswith(f"gaia improve cycle #{cycle_id}: fix 2 findings in 1 files")
    assert "- lint mod.py:1: F401" in message
    assert "- format mod.py:1: " in message
    assert "Tests: pytest passed, 1 passed, 0 failed, 0 errors before the fix" in message
    assert Path(fixes["patch_file"]).read_text() == fixes["diff"]


def test_a_fix_over_uncommitted_work_is_not_committed(tmp_path: Path, repo: Path) -> None:
    write(repo, "mod.py", MODULE + "\n\ndef sub(a, b):\n    return a - b\n")  # not committed
    with improve_tree(config(tmp_path, repo, SETTINGS)) as tree:
        result = history.show(tree.cycle(apply=True))

    fixes = result["fixes"]
    assert (fixes["status"], fixes["applied"]) == ("verified", False)
    assert "uncommitted changes" in fixes["apply_error"]
    assert git(repo, "branch", "--list", "gaia-improve/*") == ""
    assert Path(fixes["patch_file"]).is_file()  # still there to apply by hand


def test_nothing_is_applied_when_the_tree_changed_since_the_cycle_read_it(
    tmp_path: Path, repo: Path
) -> None:
    # The suite itself writes into the tree: after the walk, before the fix is applied.
    write(repo, "test_writer.py", "def test_writes():\n    open('note.txt', 'w').write('x')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a test that writes")
    with improve_tree(config(tmp_path, repo, SETTINGS)) as tree:
        result = history.show(tree.cycle(apply=True))

    fixes = result["fixes"]
    assert fixes["applied"] is False
    assert "the tree changed since the cycle read it (note.txt)" in fixes["apply_error"]
    assert git(repo, "branch", "--list", "gaia-improve/*") == ""
    assert (repo / "mod.py").read_text() == MODULE


def test_a_plain_folder_gets_the_patch_file_and_the_patch_only_when_asked(
    tmp_path: Path, repo: Path
) -> None:
    plain = tmp_path / "plain"
    for name in ("pyproject.toml", "mod.py", "test_mod.py"):
        write(plain, name, (repo / name).read_text())
    with improve_tree(config(tmp_path, plain, SETTINGS)) as tree:
        reported = history.show(tree.cycle())
        untouched = (plain / "mod.py").read_text()
        applied = history.show(tree.cycle(apply=True))

    assert untouched == MODULE
    assert Path(reported["fixes"]["patch_file"]).read_text() == reported["fixes"]["diff"]
    assert reported["fixes"]["applied"] is False
    assert applied["fixes"]["applied"] is True
    assert "branch" not in applied["fixes"]
    assert (plain / "mod.py").read_text() == FIXED


def test_tree_state_names_what_changed() -> None:
    before = TreeState({"a.py": (1, 10), "b.py": (2, 20)}, "/r", "abc", "main")
    after = TreeState({"a.py": (1, 10), "b.py": (2, 21), "c.py": (3, 30)}, "/r", "def", "main")
    assert before.changes_since(before) == []
    assert before.changes_since(after) == ["b.py", "c.py", "HEAD (main -> main)"]
