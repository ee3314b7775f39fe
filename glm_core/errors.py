"""The one error type the project raises for bad user input."""


class InputError(ValueError):
    """Raised for malformed or degenerate data, files and settings.

    The message is written for the person using the explorer: the app shows it in the page as is.
    """
