"""Type stubs of the native module (the Rust half of the package; use the public API in
``smartmeter`` instead)."""

from typing import Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

_ReadResult = Tuple[
    npt.NDArray[np.float32],  # samples (n, channels)
    List[str],  # channels
    List[str],  # units
    int,  # rate (Hz)
    Optional[int],  # start, µs since the Unix epoch
    int,  # lost packets
    Optional[str],  # meter name
    str,  # status
    bool,  # truncated
]

def read_recording(path: str, rate: Optional[int] = None, channels: Optional[List[str]] = None) -> _ReadResult: ...
def write_recording(
    path: str,
    samples: npt.NDArray[np.float32],
    channels: List[str],
    units: List[str],
    rate: int,
    start_us: Optional[int] = None,
    lost: int = 0,
    name: Optional[str] = None,
    interrupted: bool = False,
) -> str: ...
def default_channels(columns: int) -> List[str]: ...
def analyze(
    samples: npt.NDArray[np.float32],
    rate: int,
    channels: Optional[List[str]] = None,
    units: Optional[List[str]] = None,
    start_us: Optional[int] = None,
    nominal: Optional[int] = None,
) -> Dict[str, npt.NDArray[np.generic]]: ...
def power_quality(
    samples: npt.NDArray[np.float32],
    rate: int,
    channels: Optional[List[str]] = None,
    units: Optional[List[str]] = None,
    start_us: Optional[int] = None,
    interval: str = "10min",
    udin: Optional[float] = None,
    nominal: Optional[int] = None,
) -> Tuple[List[str], List[str]]: ...

class NativeStream:
    @property
    def channels(self) -> List[str]: ...
    @property
    def units(self) -> List[str]: ...
    @property
    def rate(self) -> int: ...
    @property
    def start_us(self) -> Optional[int]: ...
    @property
    def lost(self) -> int: ...
    @property
    def zero_filled(self) -> int: ...
    @property
    def stop_reply(self) -> Optional[str]: ...
    def next_block(self) -> Optional[npt.NDArray[np.float32]]: ...
    def close(self) -> None: ...

class NativeMeter:
    def __init__(self, host: str, timeout: float = 5.0, token: Optional[str] = None) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def is_open(self) -> bool: ...
    def request(self, line: str, cmd_name: str) -> str: ...
    def record(
        self, seconds: float, rate: int, measures: str
    ) -> Tuple[
        npt.NDArray[np.float32],
        List[str],
        List[str],
        int,
        Optional[int],
        int,
        int,
        Optional[str],
        Optional[BaseException],
    ]: ...
    def stream(self, rate: int, measures: str, block: int) -> NativeStream: ...
    def close(self) -> None: ...
