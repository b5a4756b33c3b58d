"""Progress bars on a terminal, one line per stage elsewhere: a log file or a CI console gets
'desc: n unit in s' when a stage ends, not a bar redrawn with carriage returns. Every bar of this package is one."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm


def interactive() -> bool:
    """Whether stderr, where bars are drawn, is a terminal."""
    return sys.stderr.isatty()


class Progress(tqdm):
    """tqdm on a terminal; elsewhere silent until closed, then one line on stderr. `disable=True` stays silent."""

    # class defaults: tqdm may close an instance whose __init__ never ran (a signal raised inside it)
    _line = False
    _said = False

    def __init__(self, iterable: Iterable[Any] | None = None, *args: Any, **kwargs: Any) -> None:
        quiet = bool(kwargs.pop("disable", False))
        self._line = not quiet and not interactive()
        self._label = (kwargs.get("desc") or "progress", kwargs.get("unit", "it"))
        self._count, self._start, self._said = 0, time.perf_counter(), False
        super().__init__(iterable, *args, disable=quiet or self._line, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        if not self._line:
            yield from super().__iter__()
            return
        try:
            for item in self.iterable:
                self._count += 1
                yield item
        finally:
            self.close()

    def update(self, n: float | None = 1) -> bool | None:
        self._count += int(n or 0)
        return super().update(n)

    def close(self) -> None:
        if self._line and not self._said:
            self._said = True
            desc, unit = self._label
            print(f"{desc}: {self._count} {unit} in {time.perf_counter() - self._start:.1f} s", file=sys.stderr,
                  flush=True)
        super().close()
