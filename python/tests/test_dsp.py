"""`analyze` and `power_quality` from numpy arrays: the CLI's numbers, on the CLI's files."""

from __future__ import annotations

import math

import numpy as np
import pytest

import smartmeter
from smartmeter._recording import as_samples

from conftest import json_lines

PHASE_KEYS = ["voltage", "current", "activePower", "reactivePower", "apparentPower", "frequency", "powerFactor"]


def synthetic(seconds: float = 2.0, rate: int = 8000) -> np.ndarray:
    """Three phases: 230 V, 5/3/1 A lagging by 0/30/-20 degrees, 50 Hz (V and mA)."""
    t = np.arange(int(seconds * rate)) / rate
    cols = []
    for k, (amps, phi) in enumerate([(5, 0), (3, 30), (1, -20)]):
        shift = -2 * math.pi * k / 3
        cols.append(230 * math.sqrt(2) * np.sin(2 * math.pi * 50 * t + shift))
        cols.append(amps * 1000 * math.sqrt(2) * np.sin(2 * math.pi * 50 * t + shift - math.radians(phi)))
    return np.ascontiguousarray(np.column_stack(cols), dtype=np.float32)


def assert_rows_equal(res, rows):
    assert len(rows) > 0
    assert res["t"].shape == (len(rows),)
    for k, row in enumerate(rows):
        assert res["t"][k] == row["t"]
        assert res["cycles"][k] == row["cycles"]
        for key in PHASE_KEYS:
            want = np.array([np.nan if x is None else x for x in row[key]], dtype=np.float32)
            np.testing.assert_array_equal(res[key][k], want, err_msg=f"row {k} {key}")


def test_analyze_equals_the_cli(cli_recordings, cli):
    path = cli_recordings["wav"]
    rows = json_lines(cli("analyze", str(path), "--json"))
    rec = smartmeter.Recording.read(path)
    assert_rows_equal(rec.analyze(), rows)
    # the same from a bare array with the metadata passed by hand
    res = smartmeter.analyze(rec.samples, rec.rate, rec.channels, units=rec.units, start_ts=rec.start_ts)
    assert_rows_equal(res, rows)
    assert set(res) == {"t", "cycles", *PHASE_KEYS}
    assert res["voltage"].shape == (len(rows), 3) and res["voltage"].dtype == np.float32


def test_analyze_f32_and_csv_equal_the_cli(cli_recordings, cli):
    f32 = cli_recordings["f32"]
    rows = json_lines(cli("analyze", str(f32), "--rate", "8000", "--json"))
    rec = smartmeter.Recording.read(f32, rate=8000)
    assert_rows_equal(smartmeter.analyze(rec.samples, 8000), rows)
    csv = cli_recordings["csv"]
    rows = json_lines(cli("analyze", str(csv), "--json"))
    assert_rows_equal(smartmeter.Recording.read(csv).analyze(), rows)


def test_power_quality_equals_the_cli(start_sim, cli, tmp_path):
    # a dip and a swell inside the recording, so that events are compared too
    sim = start_sim("--dip", "2500ms:100ms:0.5:1", "--swell", "3500ms:200ms:1.15")
    path = tmp_path / "pq.wav"
    cli("record", sim.host, "--rate", "8000", "--duration", "5s", "--out", str(path))
    out = json_lines(cli("analyze", str(path), "--pq", "--interval", "200ms", "--json"))
    want_events = [o for o in out if "type" in o]
    want_aggregates = [o for o in out if "interval" in o]
    rec = smartmeter.Recording.read(path)
    aggregates, events = rec.power_quality(interval="200ms")
    assert aggregates == want_aggregates and len(aggregates) > 0
    assert events == want_events
    assert {e["type"] for e in events} >= {"dip", "swell"}
    # 3s aggregates, from an array with the metadata by hand
    out3 = json_lines(cli("analyze", str(path), "--pq", "--interval", "3s", "--json"))
    aggregates3, events3 = smartmeter.power_quality(
        rec.samples, rec.rate, rec.channels, interval="3s", units=rec.units, start_ts=rec.start_ts
    )
    assert aggregates3 + events3 == [o for o in out3 if "interval" in o] + [o for o in out3 if "type" in o]


def test_analyze_synthetic_values():
    samples = synthetic()
    res = smartmeter.analyze(samples, 8000)
    assert 0 <= res["t"][0] < 0.05  # the first whole window starts at a zero crossing of L1
    np.testing.assert_allclose(res["voltage"], 230, rtol=1e-4)
    np.testing.assert_allclose(res["current"][-1], [5000, 3000, 1000], rtol=1e-4)
    want_p = [230 * 5 * math.cos(0), 230 * 3 * math.cos(math.radians(30)), 230 * 1 * math.cos(math.radians(-20))]
    np.testing.assert_allclose(res["activePower"][-1], want_p, rtol=1e-4)
    # other dtypes and layouts are converted (one copy) and give the same numbers
    res64 = smartmeter.analyze(samples.astype(np.float64), 8000)
    np.testing.assert_array_equal(res64["activePower"], res["activePower"])
    fortran = np.asfortranarray(samples)
    np.testing.assert_array_equal(smartmeter.analyze(fortran, 8000)["voltage"], res["voltage"])


def test_a_float32_c_array_is_read_in_place():
    samples = synthetic(0.1)
    assert as_samples(samples) is samples
    assert as_samples(samples.astype(np.float64)) is not samples


def test_analyze_and_power_quality_errors():
    with pytest.raises(ValueError, match="columns"):
        smartmeter.analyze(np.zeros((100, 4), np.float32), 8000)
    with pytest.raises(ValueError):
        smartmeter.analyze(np.zeros((100, 6), np.float32), 8000, channels=["a", "b", "c", "d", "e", "f"])
    with pytest.raises(ValueError, match="interval"):
        smartmeter.power_quality(synthetic(0.1), 8000, interval="5min")
    with pytest.raises(ValueError, match="rate"):
        smartmeter.power_quality(synthetic(0.1, rate=500), 500)


def test_power_quality_voltage_only():
    samples = synthetic(2.0)[:, ::2]  # v_l1, v_l2, v_l3 (a strided view: converted)
    aggregates, events = smartmeter.power_quality(samples, 8000, interval="200ms", udin=230, nominal=50)
    assert aggregates and events == []
    a = aggregates[-1]
    assert a["interval"] == "200ms" and a["voltage"] == pytest.approx([230, 230, 230], rel=1e-4)
    assert a["thdI"] == [None, None, None]
