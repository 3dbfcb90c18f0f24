"""The log and its rotations on disk (``gaia.jsonl``, ``gaia.jsonl.1`` ...): opening them, and
telling files apart by identity (device and inode) rather than by name."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

CHUNK = 64 * 1024  # read size when scanning a file backwards or forwards


def rotation_numbers(path: Path) -> list[int]:
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]*)")
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for name in names if (m := pattern.fullmatch(name)))


def numbered(path: Path, number: int) -> Path:
    return path if number == 0 else path.with_name(f"{path.name}.{number}")


def open_log(path: Path) -> io.FileIO | None:
    try:
        return io.FileIO(path, "r")
    except FileNotFoundError:
        return None


def identity(stat: os.stat_result) -> tuple[int, int]:
    return (stat.st_dev, stat.st_ino)


def file_identity(handle: io.FileIO) -> tuple[int, int]:
    return identity(os.fstat(handle.fileno()))


def identity_at(path: Path) -> tuple[int, int] | None:
    try:
        return identity(os.stat(path))
    except FileNotFoundError:
        return None


def decode(line: bytes) -> str:
    return line.decode("utf-8", "replace").removesuffix("\r")
