"""A user's mistake (a bad config, a run directory in the way, a missing file): one line on stderr, exit 2."""

from __future__ import annotations

import sys

USER_ERRORS = (FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def user_error(command: str, err: BaseException) -> int:
    print(f"jdl {command}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2
