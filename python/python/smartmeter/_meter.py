"""`Meter`: one connection to a SmartMeter (TCP or serial), blocking, GIL-free while it waits."""

from __future__ import annotations

import json
import os
from types import TracebackType
from typing import Any, Dict, Iterator, List, Optional, Type

import numpy as np

from . import _smartmeter as _native
from ._errors import RecordingInterrupted
from ._recording import Recording

#: ``Meter.get`` quantities and the commands that read them.
QUANTITIES: Dict[str, str] = {
    "voltage": "getVoltage",
    "current": "getCurrent",
    "power": "getPower",
    "energy": "getEnergy",
    "frequency": "getPeriod",
    "phase": "getPhaseAngle",
    "quality": "getQuality",
    "pq": "getPQ",
}


class Stream:
    """The blocks of one sampling session (from :meth:`Meter.stream`): an iterator of
    ``float32`` arrays of shape ``(block, channels)``; the last may be shorter if the session
    ends. Lost packets arrive as zeros and are counted in :attr:`lost`.

    The connection keeps reading in the background, so the loop body may take time; a reader
    slower than the meter on average makes the meter drop packets. :meth:`close` (or leaving a
    ``with`` block, or garbage collection) stops the meter.
    """

    def __init__(self, native: Any) -> None:
        self._native = native
        self.channels: List[str] = list(native.channels)
        self.units: List[str] = list(native.units)
        self.rate: int = int(native.rate)
        start = native.start_us
        self.start_ts: Optional[float] = None if start is None else start / 1e6

    @property
    def lost(self) -> int:
        """Packets lost so far (zero-filled)."""
        return int(self._native.lost)

    @property
    def stop_reply(self) -> Optional[Dict[str, Any]]:
        """The meter's reply to ``stop`` (``samples``, ``sentSamples``, ``avgRate``, ...), once
        closed."""
        text = self._native.stop_reply
        return None if text is None else json.loads(text)

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> np.ndarray:
        block = self._native.next_block()
        if block is None:
            raise StopIteration
        return block

    def close(self) -> None:
        """Stops the meter's session and waits for its stop reply. Idempotent."""
        self._native.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class Meter:
    """A connection to one meter.

    Args:
        host: as the ``smartmeter`` CLI takes it: ``host[:port]`` (default port 54321),
            ``[v6]:port``, a meter name (resolved by DNS, then mDNS), or a serial device
            (``/dev/ttyACM0``, ``COM3``).
        timeout: seconds to connect and to wait for each reply.
        token: the access token of a protected meter (default ``$SMARTMETER_TOKEN``).

    Raises:
        UnreachableError: the meter cannot be reached (the message names ``host``).
        ValueError: ``host`` is not a valid host.

    Every call blocks without holding the GIL and can be interrupted with Ctrl-C. Use it as a
    context manager, or call :meth:`close`::

        with smartmeter.Meter("192.168.4.1") as m:
            print(m.get("power")["activePower"])
    """

    def __init__(self, host: str, timeout: float = 5.0, *, token: Optional[str] = None) -> None:
        if token is None:
            token = os.environ.get("SMARTMETER_TOKEN") or None
        self._native = _native.NativeMeter(str(host), float(timeout), token)
        self.host: str = str(host)
        self.timeout: float = float(timeout)

    @property
    def name(self) -> str:
        """The meter's name (from the ``info`` it sent on connecting)."""
        return str(self._native.name)

    def __repr__(self) -> str:
        state = "open" if self._native.is_open else "closed"
        return f"Meter({self.host!r}, {state})"

    def command(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        """Sends one command object (``{"cmd": "getEnergy"}``) and returns the meter's reply
        object as it sent it.

        Raises:
            RefusedError: the meter answered ``"error": true`` (its ``msg`` is in the exception).
            BusyError: the meter is sampling for another client.
            MeterTimeoutError, ConnectionLostError: no reply, or the connection ended.
            ValueError: not a command object, or ``sample`` (use :meth:`record`/:meth:`stream`).
        """
        if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
            raise ValueError('a command is a dict with a "cmd" string, e.g. {"cmd": "info"}')
        line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        return json.loads(self._native.request(line, obj["cmd"]))

    def info(self) -> Dict[str, Any]:
        """The meter's ``info`` object (name, version, state, settings, ...)."""
        return self.command({"cmd": "info"})

    def get(self, quantity: str, *, interval: Optional[str] = None) -> Dict[str, Any]:
        """Reads one quantity; returns the meter's reply object.

        Args:
            quantity: ``"voltage"``, ``"current"``, ``"power"``, ``"energy"``, ``"frequency"``,
                ``"phase"``, ``"quality"`` or ``"pq"`` (the last complete power-quality
                aggregate, §11).
            interval: for ``"pq"``: ``"200ms"``, ``"3s"`` (the meter's default), ``"10min"``,
                ``"2h"``.
        """
        try:
            cmd = QUANTITIES[quantity]
        except KeyError:
            raise ValueError(f"unknown quantity {quantity!r} (use {', '.join(QUANTITIES)})") from None
        obj: Dict[str, Any] = {"cmd": cmd}
        if interval is not None:
            if cmd != "getPQ":
                raise ValueError("interval is for get('pq') only")
            obj["interval"] = interval
        return self.command(obj)

    def events(self, since: int = 0) -> List[Dict[str, Any]]:
        """Ended power-quality events with an id above ``since``, oldest first (``getEvents``,
        §11.6; every page the meter has is fetched)."""
        out: List[Dict[str, Any]] = []
        for _ in range(1000):
            reply = self.command({"cmd": "getEvents", "since": int(since)})
            page = reply.get("events") or []
            out.extend(page)
            nxt = reply.get("next")
            if not page or not isinstance(nxt, int) or nxt <= since:
                break
            since = nxt
        return out

    def record(self, seconds: float, rate: int = 8000, measures: str = "v,i") -> Recording:
        """Records exactly ``round(rate × seconds)`` samples of ``measures`` into memory.

        Args:
            seconds: duration.
            rate: samples per second per channel, 1..32000 Hz (1..50 for ``p,q`` and ``v,i_RMS``).
            measures: ``"v,i"`` (all six waveforms), ``"v,i_L1"``/``_L2``/``_L3``, ``"p,q"``,
                ``"v,i_RMS"``.

        Returns:
            a :class:`Recording`; lost packets are zero-filled and counted in ``lost``.

        Raises:
            RecordingInterrupted: Ctrl-C; the meter was stopped, the samples so far are in the
                exception's ``recording``.
            BusyError: another client is sampling.
            ConnectionLostError, MeterTimeoutError: the connection failed.

        The data is read by a background thread without the GIL: other Python threads run
        meanwhile, and nothing is lost to Python being slow.
        """
        r = self._native.record(float(seconds), int(rate), str(measures))
        samples, channels, units, rate_hz, start_us, lost, _zero_filled, _stop_json, interrupted = r
        rec = Recording._from_native(
            (samples, channels, units, rate_hz, start_us, lost, self._native.name, "complete", False)
        )
        if interrupted is not None:
            rec.status = "interrupted"
            if isinstance(interrupted, KeyboardInterrupt):
                raise RecordingInterrupted(rec) from interrupted
            raise interrupted
        return rec

    def stream(self, rate: int = 8000, measures: str = "v,i", block: Optional[int] = None) -> Stream:
        """Starts sampling and returns the :class:`Stream` of blocks (``block`` samples per
        channel each; default ``rate // 10``, a tenth of a second). Stop it with
        ``Stream.close()`` or a ``with`` block::

            with m.stream(rate=32000) as s:
                for block in s:          # (3200, 6) float32
                    ...
        """
        if block is None:
            block = max(1, int(rate) // 10)
        return Stream(self._native.stream(int(rate), str(measures), int(block)))

    def close(self) -> None:
        """Closes the connection (a sampling session it runs stops). Idempotent."""
        self._native.close()

    def __enter__(self) -> "Meter":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
