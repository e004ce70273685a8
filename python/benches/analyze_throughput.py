"""Throughput of `smartmeter.analyze` from a numpy array (samples = values, all channels).

    python python/benches/analyze_throughput.py [SECONDS] [--cli PATH_TO_smartmeter]

Synthesises SECONDS (default 600) of a 3-phase 8 kHz recording (six float32 channels), runs
`analyze` on it three times and prints the best rate. With `--cli`, also writes the samples to a
WAV and times `smartmeter analyze FILE --json` on it, as a baseline in the same run.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import smartmeter


def main() -> None:
    args = sys.argv[1:]
    cli = None
    if "--cli" in args:
        i = args.index("--cli")
        cli = args[i + 1]
        del args[i : i + 2]
    seconds = float(args[0]) if args else 600.0
    rate = 8000
    t = np.arange(int(seconds * rate), dtype=np.float64) / rate
    samples = np.empty((t.size, 6), dtype=np.float32)
    for k, (amps, phi) in enumerate([(5, 0), (3, 30), (1, -20)]):
        w = 2 * math.pi * 50 * t - 2 * math.pi * k / 3
        samples[:, 2 * k] = 230 * math.sqrt(2) * np.sin(w)
        samples[:, 2 * k + 1] = amps * 1000 * math.sqrt(2) * np.sin(w - math.radians(phi))
    n = samples.size
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        res = smartmeter.analyze(samples, rate)
        best = min(best, time.perf_counter() - t0)
    print(f"analyze(ndarray): {n / 1e6:.1f} M samples ({len(res['t'])} windows) in {best:.3f} s = {n / best / 1e6:.1f} M samples/s")
    if cli:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "bench.wav"
            smartmeter.Recording(samples, rate, start_ts=1.7e9).write(path)
            best_cli = math.inf
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run([cli, "analyze", str(path), "--json"], check=True, stdout=subprocess.DEVNULL)
                best_cli = min(best_cli, time.perf_counter() - t0)
            print(f"smartmeter analyze FILE --json: {n / best_cli / 1e6:.1f} M samples/s; analyze(ndarray) is {best_cli / best:.2f}x its speed")


if __name__ == "__main__":
    main()
