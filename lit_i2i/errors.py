"""The one exception type for bad user input.

Anything raised as :class:`UserError` is printed by ``lit-i2i`` as a single readable line (no
traceback) and the command exits with status 2. Datamodules, configs and commands raise it when a
file, folder or option is wrong; it always names the file or the option. :class:`BadImageError` is
the UserError of one image file that cannot be read: datasets skip such files where the user asked
(``skip_bad_files``).
"""

from __future__ import annotations

import re


class UserError(Exception):
    """Bad input from the user: a path, a file or an option. Printed without a traceback."""


class BadImageError(UserError):
    """One image file that cannot be read (missing, no permission, corrupt or truncated)."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


def one_line(e: BaseException) -> str:
    """The user's message of ``e``, also when a DataLoader worker re-raised it: torch then builds the
    exception from the worker's whole traceback ("Caught UserError in DataLoader worker process 0.
    Original Traceback ... lit_i2i.errors.UserError: <message>"); only <message> is for the user."""
    text = str(e)
    if "Original Traceback" in text:
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        text = re.sub(r"^[\w.]*(UserError|BadImageError): ", "", last.strip())
    return " ".join(text.split("\n"))
