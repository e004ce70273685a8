"""`Recording`: samples in numpy, read and written exactly as the ``smartmeter`` CLI does."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _smartmeter as _native

if TYPE_CHECKING:  # pragma: no cover
    import pandas

PathLike = Union[str, "os.PathLike[str]"]

_STATUSES = ("complete", "interrupted", "incomplete", "recording")


def default_units(channels: Sequence[str]) -> List[str]:
    """The unit the meter reports for each channel name: ``V`` for ``v_*``/``vrms_*``,
    ``mA`` for ``i_*``/``irms_*``, ``W`` for ``p_*``, ``VAR`` for ``q_*``, else ``""``."""
    units = []
    for c in channels:
        c = c.lower()
        if c.startswith(("v_", "vrms_")):
            units.append("V")
        elif c.startswith(("i_", "irms_")):
            units.append("mA")
        elif c.startswith("p_"):
            units.append("W")
        elif c.startswith("q_"):
            units.append("VAR")
        else:
            units.append("")
    return units


def as_samples(samples: Any) -> np.ndarray:
    """``samples`` as a C-contiguous float32 array of shape ``(n, channels)``.

    An array that already is one is returned as it is (no copy); anything else (another dtype,
    a non-contiguous view, a list) is converted, which copies it once. A 1-D array is one channel.
    """
    arr = np.asarray(samples)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"samples must be 2-D (n, channels), got shape {arr.shape}")
    if arr.dtype != np.float32 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
    return arr


class Recording:
    """A recording: ``n`` samples of ``channels`` at ``rate`` Hz.

    Attributes:
        samples: ``numpy.float32`` array of shape ``(n, len(channels))``, in the meter's units
            (``V``, ``mA``, ``W``, ``VAR``). Lost packets are zeros (see :attr:`lost`).
        channels: channel names as in the files (``v_l1, i_l1, v_l2, i_l2, v_l3, i_l3``;
            ``p_l1..q_l3``; ``vrms_l1..irms_l3``).
        units: unit per channel (``V``, ``mA``, ...); may be empty when a file does not say.
        rate: samples per second per channel (Hz).
        start_ts: the meter's ``startTs``: Unix time (s) of sample 0, or ``None`` when unknown
            (a ``.f32`` file). Sample ``k`` is at ``start_ts + k / rate``.
        lost: packets the meter dropped during the recording (their samples are zero-filled).
        name: the meter's name, if known.
        status: ``"complete"``, ``"interrupted"`` (stopped by Ctrl-C), ``"incomplete"`` or
            ``"recording"`` (a file whose writer did not finish).
        truncated: the file was shorter than its header said (a writer that was killed).
    """

    def __init__(
        self,
        samples: Any,
        rate: int,
        channels: Optional[Sequence[str]] = None,
        units: Optional[Sequence[str]] = None,
        start_ts: Optional[float] = None,
        lost: int = 0,
        name: Optional[str] = None,
        status: str = "complete",
    ) -> None:
        arr = as_samples(samples)
        if channels is None:
            channels = _native.default_channels(arr.shape[1])
        channels = [str(c) for c in channels]
        if len(channels) != arr.shape[1]:
            raise ValueError(f"samples have {arr.shape[1]} columns but {len(channels)} channel names were given")
        if int(rate) < 1:
            raise ValueError("rate must be at least 1 Hz")
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}")
        self.samples: np.ndarray = arr
        self.channels: List[str] = channels
        self.units: List[str] = list(units) if units is not None else default_units(channels)
        self.rate: int = int(rate)
        self._start_us: Optional[int] = None if start_ts is None else int(round(float(start_ts) * 1e6))
        self.lost: int = int(lost)
        self.name: Optional[str] = name
        self.status: str = status
        self.truncated: bool = False

    @property
    def start_ts(self) -> Optional[float]:
        """Unix time (s) of sample 0, or ``None``."""
        return None if self._start_us is None else self._start_us / 1e6

    @start_ts.setter
    def start_ts(self, value: Optional[float]) -> None:
        self._start_us = None if value is None else int(round(float(value) * 1e6))

    @property
    def duration(self) -> float:
        """Length in seconds (``len(samples) / rate``)."""
        return self.samples.shape[0] / self.rate

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    def __repr__(self) -> str:
        start = "unknown" if self.start_ts is None else f"{self.start_ts:.3f}"
        return (
            f"Recording({len(self)} samples × {len(self.channels)} channels "
            f"[{','.join(self.channels)}] at {self.rate} Hz, start_ts={start}, lost={self.lost}, status={self.status})"
        )

    @classmethod
    def _from_native(cls, t: Tuple[Any, ...]) -> "Recording":
        samples, channels, units, rate, start_us, lost, name, status, truncated = t
        rec = cls.__new__(cls)
        rec.samples = samples
        rec.channels = list(channels)
        rec.units = list(units)
        rec.rate = int(rate)
        rec._start_us = start_us
        rec.lost = int(lost)
        rec.name = name
        rec.status = status
        rec.truncated = bool(truncated)
        return rec

    # --- files -----------------------------------------------------------------------------

    @classmethod
    def read(
        cls,
        path: PathLike,
        rate: Optional[int] = None,
        channels: Optional[Sequence[str]] = None,
    ) -> "Recording":
        """Reads a ``.wav``, ``.csv`` or ``.f32`` recording (as ``smartmeter record`` writes
        them; the format comes from the extension, a trailing ``.part`` is looked through).

        Args:
            rate: required for ``.f32`` (the file does not say it); for ``.csv`` only when the
                file is too short to derive it.
            channels: names for ``.f32`` files (default the six waveforms ``v_l1,i_l1,…``).

        Raises:
            OSError: the file cannot be read.
            ValueError: the contents are not a recording, or ``rate`` is missing for ``.f32``.
        """
        chans = None if channels is None else [str(c) for c in channels]
        return cls._from_native(_native.read_recording(os.fspath(path), rate, chans))

    def write(self, path: PathLike) -> str:
        """Writes the recording as ``.wav``, ``.csv`` or ``.f32`` (by the extension), byte for
        byte as ``smartmeter record`` writes the same samples and metadata: a 32-bit float WAV
        with the channel names, units, ``startTs``, lost packets and status in its LIST/INFO
        chunk; a CSV with a Unix timestamp per row; raw little-endian float32. The file is
        written to ``PATH.part`` and renamed when complete. Returns the path written.

        Raises:
            OSError: the file cannot be written.
            ValueError: unknown extension, or samples that do not fit the channels.
        """
        samples = as_samples(self.samples)
        return os.fspath(
            _native.write_recording(
                os.fspath(path),
                samples,
                list(self.channels),
                list(self.units),
                self.rate,
                self._start_us,
                self.lost,
                self.name,
                self.status == "interrupted",
            )
        )

    # --- analysis --------------------------------------------------------------------------

    def analyze(self, nominal: Optional[int] = None) -> Dict[str, np.ndarray]:
        """:func:`smartmeter.analyze` over this recording (its rate, channels, units and start
        time): the numbers ``smartmeter analyze FILE --json`` prints for its file."""
        from ._dsp import analyze

        return analyze(self.samples, self.rate, self.channels, nominal, units=self.units, start_ts=self.start_ts)

    def power_quality(
        self,
        interval: str = "10min",
        udin: Optional[float] = None,
        nominal: Optional[int] = None,
    ) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
        """:func:`smartmeter.power_quality` over this recording: the objects
        ``smartmeter analyze FILE --pq --json`` prints for its file."""
        from ._dsp import power_quality

        return power_quality(
            self.samples,
            self.rate,
            self.channels,
            interval,
            udin,
            nominal,
            units=self.units,
            start_ts=self.start_ts,
        )

    # --- pandas and NILMTK -----------------------------------------------------------------

    def _index_ns(self) -> np.ndarray:
        """Nanoseconds since the Unix epoch of every sample (``start_ts + k / rate``; from 0 when
        the start is unknown)."""
        start_ns = 0 if self._start_us is None else self._start_us * 1000
        k = np.arange(len(self), dtype=np.int64)
        # k * 1e9 / rate, rounded to the ns, in integers (exact for any length that fits in memory)
        return start_ns + (k * 1_000_000_000 + self.rate // 2) // self.rate

    def to_pandas(self) -> "pandas.DataFrame":
        """A ``pandas.DataFrame``: one column per channel, indexed by a UTC ``DatetimeIndex``
        (``start_ts + k / rate``; from the Unix epoch when the start is unknown).

        Raises:
            ImportError: pandas is not installed (``pip install pandas``).
        """
        pd = _require("pandas", "to_pandas() needs pandas: pip install pandas")
        index = pd.DatetimeIndex(pd.to_datetime(self._index_ns(), unit="ns", utc=True), name="time")
        return pd.DataFrame(self.samples, index=index, columns=list(self.channels))

    def to_nilmtk(self, path: PathLike, building: int = 1, meter: int = 1) -> List[str]:
        """Writes the recording into a NILMTK HDF5 data store (created, or added to).

        NILMTK meters measure one circuit, so each phase becomes a meter: L1 is
        ``/building{building}/elec/meter{meter}``, L2 ``meter+1``, L3 ``meter+2`` (only phases the
        recording has). Columns are NILMTK's ``(physical_quantity, type)`` pairs: waveforms as
        ``("voltage", "")`` in V and ``("current", "")`` in A; ``p,q`` recordings as
        ``("power", "active")`` W and ``("power", "reactive")`` var; ``v,i_RMS`` recordings as
        voltage and current. The index is UTC. The dataset and building metadata NILMTK reads
        (``meter_devices``, ``elec_meters`` with ``site_meter``) are stored as the node attributes
        NILMTK's own converters write. Returns the keys written.

        Raises:
            ImportError: pandas or PyTables (``pip install 'smartmeter[nilmtk]'``) is missing.
        """
        pd = _require("pandas", "to_nilmtk() needs pandas and PyTables: pip install 'smartmeter[nilmtk]'")
        _require("tables", "to_nilmtk() needs PyTables (HDF5): pip install 'smartmeter[nilmtk]'")
        df = self.to_pandas()
        scale = {"mA": 1e-3}
        quantities = {
            "v": ("voltage", ""),
            "vrms": ("voltage", ""),
            "i": ("current", ""),
            "irms": ("current", ""),
            "p": ("power", "active"),
            "q": ("power", "reactive"),
        }
        phases: Dict[int, Dict[Tuple[str, str], np.ndarray]] = {}
        for col, (name, unit) in enumerate(zip(self.channels, self.units + [""] * len(self.channels))):
            head, _, phase = name.lower().partition("_l")
            if head not in quantities or phase not in ("1", "2", "3"):
                continue
            values = self.samples[:, col].astype(np.float32)
            if head in ("i", "irms") and unit != "A":
                values = values * np.float32(scale["mA"])
            phases.setdefault(int(phase), {})[quantities[head]] = values
        if not phases:
            raise ValueError(f"no per-phase channels to store (channels {self.channels})")
        keys = []
        measurements = set()
        elec_meters: Dict[int, Dict[str, Any]] = {}
        with pd.HDFStore(os.fspath(path), mode="a") as store:
            for phase in sorted(phases):
                cols = phases[phase]
                columns = pd.MultiIndex.from_tuples(list(cols), names=["physical_quantity", "type"])
                frame = pd.DataFrame(np.column_stack(list(cols.values())), index=df.index, columns=columns)
                key = f"/building{building}/elec/meter{meter + phase - 1}"
                store.put(key, frame, format="table", track_times=False)
                keys.append(key)
                measurements.update(cols)
                elec_meters[meter + phase - 1] = {
                    "site_meter": True,
                    "device_model": "smartmeter",
                    "phase": phase,
                }
            root = store.get_node("/")
            dataset = dict(getattr(root._v_attrs, "metadata", {}) or {})
            dataset.setdefault("name", self.name or "smartmeter")
            dataset.setdefault("timezone", "UTC")
            devices = dict(dataset.get("meter_devices", {}))
            devices["smartmeter"] = {
                "model": "smartmeter",
                "manufacturer": "smartmeter",
                "sample_period": 1.0 / self.rate,
                "max_sample_period": max(1.0, 10.0 / self.rate),
                "measurements": [
                    {"physical_quantity": q, "type": t, "lower_limit": None, "upper_limit": None}
                    for q, t in sorted(measurements)
                ],
                "wireless": True,
            }
            dataset["meter_devices"] = devices
            root._v_attrs.metadata = dataset
            node = store.get_node(f"/building{building}")
            md = dict(getattr(node._v_attrs, "metadata", {}) or {})
            md["instance"] = building
            md.setdefault("appliances", [])
            md["elec_meters"] = {**md.get("elec_meters", {}), **elec_meters}
            node._v_attrs.metadata = md
        return keys


def _require(module: str, message: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(message) from e
