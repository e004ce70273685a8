"""The exceptions of :mod:`smartmeter` (also raised by the native module)."""

from __future__ import annotations

from typing import Optional

__all__ = [
    "MeterError",
    "UnreachableError",
    "ConnectionLostError",
    "MeterTimeoutError",
    "RefusedError",
    "BusyError",
    "ProtocolError",
    "RecordingInterrupted",
]


class MeterError(Exception):
    """Something went wrong talking to a meter. Every message names the meter's host."""


class UnreachableError(MeterError, ConnectionError):
    """The meter could not be reached: the name does not resolve, nothing listens, the serial
    device cannot be opened, or it did not answer within the timeout when connecting."""


class ConnectionLostError(MeterError, ConnectionError):
    """The connection ended: the meter closed it, or stopped answering."""


class MeterTimeoutError(MeterError, TimeoutError):
    """No reply to a command within the meter's timeout."""


class RefusedError(MeterError):
    """The meter answered ``"error": true``.

    Attributes:
        cmd: the refused command's name (``getPQ``).
        msg: the meter's own message (``unknown command``).
    """

    def __init__(self, message: str, cmd: Optional[str] = None, msg: Optional[str] = None) -> None:
        super().__init__(message)
        self.cmd = cmd
        self.msg = msg


class BusyError(RefusedError):
    """The meter refused because a sampling session is running (``"state": "busy"``)."""

    def __init__(self, message: str, cmd: Optional[str] = None) -> None:
        super().__init__(message, cmd, "Device currently sampling")


class ProtocolError(MeterError):
    """The meter sent something that is not the protocol."""


class RecordingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :meth:`Meter.record`. The meter was stopped cleanly first; what was
    recorded until then is in :attr:`recording` (``status == "interrupted"``).

    A subclass of :class:`KeyboardInterrupt`, so an uncaught one ends the program as Ctrl-C does.
    """

    def __init__(self, recording: "object") -> None:
        super().__init__("recording interrupted")
        self.recording = recording
