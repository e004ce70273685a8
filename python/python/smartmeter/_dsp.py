"""`analyze` and `power_quality`: the meter's DSP and power-quality core over numpy arrays."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _smartmeter as _native
from ._recording import as_samples


def _start_us(start_ts: Optional[float]) -> Optional[int]:
    return None if start_ts is None else int(round(float(start_ts) * 1e6))


def _names(channels: Optional[Sequence[str]]) -> Optional[List[str]]:
    return None if channels is None else [str(c) for c in channels]


def analyze(
    samples: Any,
    rate: int,
    channels: Optional[Sequence[str]] = None,
    nominal: Optional[int] = None,
    *,
    units: Optional[Sequence[str]] = None,
    start_ts: Optional[float] = None,
) -> Dict[str, np.ndarray]:
    """Runs the meter's measurement pipeline over waveforms: the same rows, keys and numbers as
    ``smartmeter analyze FILE --json`` for a file holding these samples.

    Rows are the complete cycle-synchronous windows of 10 line cycles (12 at 60 Hz), starting at
    the first zero crossing, each correct from the first (see the CLI's documentation); ``p,q``
    and ``v,i_RMS`` recordings give one row per whole second.

    Args:
        samples: ``(n, channels)`` array in the meter's units (V, and mA unless ``units`` says
            ``A``). A C-contiguous ``float32`` array is read in place, without a copy; any other
            dtype or layout is converted first (one copy).
        rate: samples per second per channel, Hz (waveforms: 200..32000; below 1000 Hz they
            are interpolated as the CLI does).
        channels: names (default by column count: 6 → ``v_l1,i_l1,v_l2,i_l2,v_l3,i_l3``,
            2 → ``v_l1,i_l1``).
        nominal: 50 or 60 (Hz); ``None`` decides from the first second.
        units: per-channel units (``mA`` or ``A`` for currents); default the meter's.
        start_ts: Unix time (s) of the first sample; ``t`` counts from 0 without it.

    Returns:
        ``t`` (window start, s, float64, ``(windows,)``), ``cycles`` (uint32, ``(windows,)``),
        and ``voltage`` (V), ``current`` (mA), ``activePower`` (W), ``reactivePower`` (var),
        ``apparentPower`` (VA), ``frequency`` (Hz), ``powerFactor``: float32 ``(windows, 3)``,
        one column per phase, NaN where the JSON has ``null``.

    Raises:
        ValueError: channels the analysis does not understand, a rate it cannot take.

    The GIL is released while it runs.
    """
    arr = as_samples(samples)
    return _native.analyze(arr, int(rate), _names(channels), _names(units), _start_us(start_ts), nominal)


def power_quality(
    samples: Any,
    rate: int,
    channels: Optional[Sequence[str]] = None,
    interval: str = "10min",
    udin: Optional[float] = None,
    nominal: Optional[int] = None,
    *,
    units: Optional[Sequence[str]] = None,
    start_ts: Optional[float] = None,
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Runs the meter's power-quality core (IEC 61000-4-30 aggregation, flicker, voltage events;
    PROTOCOL.md §11) over waveforms: the same objects as ``smartmeter analyze FILE --pq --json``.

    Args:
        samples: ``(n, channels)`` array (see :func:`analyze`; read in place when C-contiguous
            float32). The three voltages with or without currents, or one phase's voltage
            with or without its current; rate 1000..32000 Hz.
        rate: Hz.
        channels: names (default by column count: 6 → the six waveforms, 3 → ``v_l1,v_l2,v_l3``,
            2 → ``v_l1,i_l1``, 1 → ``v_l1``).
        interval: ``"200ms"``, ``"3s"``, ``"10min"`` (with Pst) or ``"2h"`` (with Plt).
        udin: declared voltage (V); ``None`` decides from the first second.
        nominal: 50 or 60 (Hz); ``None`` decides from the first second.
        units, start_ts: as for :func:`analyze` (times are Unix seconds with ``start_ts``).

    Returns:
        ``(aggregates, events)``: every completed interval (the ``getPQ`` object without
        ``error``/``cmd``) and every ended event (the ``getEvents`` event object), in order.

    Raises:
        ValueError: unusable channels, rate, interval, udin or nominal.
    """
    arr = as_samples(samples)
    aggregates, events = _native.power_quality(
        arr,
        int(rate),
        _names(channels),
        _names(units),
        _start_us(start_ts),
        str(interval),
        None if udin is None else float(udin),
        nominal,
    )
    return [json.loads(a) for a in aggregates], [json.loads(e) for e in events]
