"""Structured, quiet-by-default logging: ``ts level logger message key=value …`` on stderr."""

from __future__ import annotations

import logging
import sys

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname.lower()} {record.name}: " \
               f"{record.getMessage()}"
        extra = " ".join(f"{k}={v!r}" for k, v in vars(record).items() if k not in _STD)
        out = f"{base} {extra}" if extra else base
        if record.exc_info:
            out += "\n" + self.formatException(record.exc_info)
        return out


def setup(verbosity: int = 0) -> None:
    """0 = warnings only, 1 = info, 2+ = debug (also for third-party loggers)."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if verbosity < 2 else logging.DEBUG)
    logging.getLogger("server").setLevel(level)
