"""One way to fail: every error a user can act on is a PatientbaseError with a documented exit code."""

from __future__ import annotations

import click

#: Exit codes (README "Exit codes"): 0 success, 1 data or check failure, 2 usage or configuration error.
EXIT_DATA = 1
EXIT_USAGE = 2


class PatientbaseError(click.ClickException):
    """A failure explained in one paragraph a clinic analyst can act on (no traceback)."""

    exit_code = EXIT_DATA

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    def show(self, file=None) -> None:  # red, to stderr, like sqlfluff/meltano
        click.secho(f"Error: {self.format_message()}", fg="red", err=True)


class ConfigError(PatientbaseError):
    """Bad configuration or usage: exit code 2."""

    exit_code = EXIT_USAGE
