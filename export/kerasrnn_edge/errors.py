"""The one error type users see: a message that says what is wrong and what to do."""


class UserError(Exception):
    """Bad input from the user. Command-line entry points print it as one line and exit 2."""
