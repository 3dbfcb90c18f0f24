"""The supervision package's errors: one root of its own, drawn once."""

from __future__ import annotations

import supervisors
from supervisors import errors
from tests.errortree import check_tree


def test_every_exception_of_the_package_derives_from_supervision_error_and_is_drawn() -> None:
    check_tree(supervisors, errors, "SupervisionError")
