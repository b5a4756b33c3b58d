"""The one error type that means "the user's input is wrong" (exit status 2 in every CLI).

Everything else that escapes a job is an internal error: exit status 1 with its traceback, and the run's
partial folder kept as `<out>.failed/` for diagnosis (compress.atomic).
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input (a file, key, option or shape), found before or during a run. The message names it, and an
    option by its field name (`lr`, `force=True`); `fields` lists those names, so that a command line can say
    its flags instead (compress.options.flag: `--lr`, `--force`)."""

    def __init__(self, message: str, field: str | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields: tuple[str, ...] = (field,) if isinstance(field, str) else tuple(field)


class DiskError(Exception):
    """The machine cannot hold the output (a full disk, a quota, a read-only filesystem): not bad input, not a
    bug. One line naming the path and the free space, exit 1, nothing left behind."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what batch schedulers send first): unwinds like Ctrl-C, so staging folders and decoding threads
    are cleaned up on the way out, and exits 143."""


EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143
