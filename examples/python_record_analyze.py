"""Record 10 s from a meter, analyse it, and plot per-phase P and V (matplotlib, if installed).

    pip install ./python matplotlib
    python examples/python_record_analyze.py 192.168.4.1          # or kitchen, host:port, /dev/ttyACM0
    python examples/python_record_analyze.py 127.0.0.1 --seconds 3 --out run.wav --plot run.png
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import smartmeter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host", help="host[:port], a meter name, or a serial device")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=8000)
    ap.add_argument("--out", help="also write the recording (.wav, .csv or .f32)")
    ap.add_argument("--plot", help="save the plot here instead of showing it")
    args = ap.parse_args()

    try:
        with smartmeter.Meter(args.host) as meter:
            print(f"recording {args.seconds} s at {args.rate} Hz from {meter.name} ({args.host}); Ctrl-C stops early")
            rec = meter.record(args.seconds, rate=args.rate)
    except smartmeter.RecordingInterrupted as stopped:
        rec = stopped.recording  # the meter was stopped; keep what came
    except smartmeter.MeterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(rec)
    if args.out:
        print("wrote", rec.write(args.out))

    res = rec.analyze()
    t = res["t"] - res["t"][0]
    for k in range(3):
        print(
            f"L{k + 1}: V {np.nanmean(res['voltage'][:, k]):8.2f} V   I {np.nanmean(res['current'][:, k]):9.1f} mA"
            f"   P {np.nanmean(res['activePower'][:, k]):9.2f} W   PF {np.nanmean(res['powerFactor'][:, k]):6.3f}"
        )
    print(f"f {np.nanmean(res['frequency'][:, 0]):.4f} Hz over {len(t)} windows; lost packets: {rec.lost}")

    try:
        import matplotlib

        if args.plot:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(pip install matplotlib for the plot)")
        return 0
    fig, (ax_p, ax_v) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for k in range(3):
        ax_p.plot(t, res["activePower"][:, k], label=f"L{k + 1}")
        ax_v.plot(t, res["voltage"][:, k], label=f"L{k + 1}")
    ax_p.set_ylabel("P (W)")
    ax_v.set_ylabel("V (V)")
    ax_v.ticklabel_format(useOffset=False)
    ax_v.set_xlabel("t (s)")
    ax_p.legend()
    fig.suptitle(f"{rec.name or args.host}: {len(rec)} samples at {rec.rate} Hz")
    if args.plot:
        fig.savefig(args.plot, dpi=100)
        print("plot in", args.plot)
    else:
        plt.show()
    return 0


if __name__ == "__main__":
    sys.exit(main())
