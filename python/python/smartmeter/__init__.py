"""smartmeter: talk to SmartMeter devices, record losslessly into numpy, and run the meter's DSP
and power-quality core on arrays and files, at Rust speed.

    >>> import smartmeter
    >>> with smartmeter.Meter("192.168.4.1") as m:            # host[:port], a name, /dev/ttyACM0
    ...     rec = m.record(10, rate=8000)                     # 10 s of v_l1,i_l1,...,i_l3
    >>> res = smartmeter.analyze(rec.samples, rec.rate)       # or rec.analyze()
    >>> res["activePower"].shape                              # (windows, 3), W per phase

Everything here is the Rust ``smartmeter`` crate underneath: the same protocol client, the same
recording files and the same analysis as the ``smartmeter`` command-line tool.
"""

from ._errors import (
    BusyError,
    ConnectionLostError,
    MeterError,
    MeterTimeoutError,
    ProtocolError,
    RecordingInterrupted,
    RefusedError,
    UnreachableError,
)
from ._smartmeter import __version__
from ._recording import Recording
from ._dsp import analyze, power_quality
from ._meter import QUANTITIES, Meter, Stream

__all__ = [
    "Meter",
    "Stream",
    "Recording",
    "analyze",
    "power_quality",
    "QUANTITIES",
    "MeterError",
    "UnreachableError",
    "ConnectionLostError",
    "MeterTimeoutError",
    "RefusedError",
    "BusyError",
    "ProtocolError",
    "RecordingInterrupted",
    "__version__",
]
