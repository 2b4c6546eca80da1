"""Cooperative cancellation: a token the caller sets, checked by the engine between files/batches."""

from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised by the engine when its CancelToken was set; work done so far is kept on disk."""


class CancelToken:
    """A thread-safe flag. The UI (or Ctrl+C in the CLI) calls ``cancel()``; the engine polls it.

    Examples
    --------
    >>> token = CancelToken()
    >>> token.cancelled
    False
    >>> token.cancel(); token.cancelled
    True
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the token was set."""
        if self._event.is_set():
            raise Cancelled()


def raise_if_cancelled(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is given and set (``None`` means never cancelled)."""
    if cancel is not None and cancel.cancelled:
        raise Cancelled()
