"""Unpacking a user's sandbox tarball safely: nothing outside the target, no links or devices, bounded size.

A sandbox is whatever a user uploaded, so every member is checked before anything is written, and the archive is
refused whole when one member is bad (upstream's parser applies the same rules; these add the size bounds).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from dataclasses import dataclass


class SandboxError(Exception):
    """The sandbox cannot be used; the message says why, for the user."""


@dataclass(frozen=True)
class SandboxLimits:
    max_members: int = 20_000
    max_unpacked_bytes: int = 2 * 1024**3


def extract_sandbox(archive: str, target: str, limits: SandboxLimits = SandboxLimits()) -> None:
    """Unpack ``archive`` (tar, any compression tarfile knows) into the existing directory ``target``."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = []
            total = 0
            for member in tar:
                members.append(member)
                if len(members) > limits.max_members:
                    raise SandboxError(f"sandbox has more than {limits.max_members} files")
                _check_member(member)
                total += max(member.size, 0)
                if total > limits.max_unpacked_bytes:
                    raise SandboxError(f"sandbox unpacks to more than {limits.max_unpacked_bytes} bytes")
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # (the checks above hold without it)
            tar.extractall(target, members=members, **extra)
    except tarfile.TarError as exc:
        raise SandboxError(f"sandbox is not a readable tar archive: {exc}") from None
    except (OSError, EOFError) as exc:  # truncated gzip stream, zlib errors, a member that cannot be written
        raise SandboxError(f"sandbox cannot be unpacked: {type(exc).__name__}: {exc}") from None


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    normalized = posixpath.normpath(name)
    if name.startswith("/") or os.path.isabs(name):
        raise SandboxError(f"sandbox member {name!r} has an absolute path")
    if normalized == ".." or normalized.startswith("../"):
        raise SandboxError(f"sandbox member {name!r} points outside the sandbox")
    if member.issym() or member.islnk():
        raise SandboxError(f"sandbox member {name!r} is a link; links are not allowed")
    if not (member.isfile() or member.isdir()):
        raise SandboxError(f"sandbox member {name!r} is a special file; only files and directories are allowed")
