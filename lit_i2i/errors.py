"""The one exception type for bad user input.

Anything raised as :class:`UserError` is printed by ``lit-i2i`` as a single readable line (no
traceback) and the command exits with status 2. Datamodules, configs and commands raise it when a
file, folder or option is wrong; it always names the file or the option.
"""


class UserError(Exception):
    """Bad input from the user: a path, a file or an option. Printed without a traceback."""
