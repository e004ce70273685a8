"""`Recording.read`/`write` against the files `smartmeter record` writes, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

import smartmeter
from conftest import optional_module


@pytest.mark.parametrize("ext", ["wav", "csv", "f32"])
def test_round_trip_is_byte_exact(cli_recordings, tmp_path, ext):
    src = cli_recordings[ext]
    rate = 8000 if ext == "f32" else None
    rec = smartmeter.Recording.read(src, rate=rate)
    assert rec.samples.dtype == np.float32 and rec.samples.shape[1] == 6
    assert rec.rate == 8000
    assert len(rec) == (24000 if ext == "wav" else 8000)
    assert rec.lost == 0
    if ext != "f32":
        assert rec.start_ts is not None
    if ext == "wav":
        assert rec.units == ["V", "mA", "V", "mA", "V", "mA"] and rec.name == "pytest"
    out = tmp_path / f"copy.{ext}"
    assert rec.write(out) == str(out)
    assert out.read_bytes() == src.read_bytes()
    again = smartmeter.Recording.read(out, rate=rate)
    np.testing.assert_array_equal(again.samples, rec.samples)


def test_formats_hold_the_same_samples(cli_recordings, tmp_path):
    wav = smartmeter.Recording.read(cli_recordings["wav"])
    for ext in ("csv", "f32"):
        path = tmp_path / f"from_wav.{ext}"
        wav.write(path)
        back = smartmeter.Recording.read(path, rate=8000 if ext == "f32" else None)
        np.testing.assert_array_equal(back.samples, wav.samples)
        if ext == "csv":
            assert back.start_ts == pytest.approx(wav.start_ts, abs=1e-6)


def test_python_recording_writes_like_the_cli(sim, tmp_path):
    with smartmeter.Meter(sim.host) as m:
        rec = m.record(0.5, rate=8000)
    rec.write(tmp_path / "py.wav")
    back = smartmeter.Recording.read(tmp_path / "py.wav")
    np.testing.assert_array_equal(back.samples, rec.samples)
    assert (back.channels, back.units, back.rate, back.start_ts, back.name, back.status) == (
        rec.channels,
        rec.units,
        rec.rate,
        rec.start_ts,
        rec.name,
        "complete",
    )


def test_read_errors(tmp_path):
    with pytest.raises(OSError):
        smartmeter.Recording.read(tmp_path / "missing.wav")
    (tmp_path / "x.f32").write_bytes(b"\0" * 48)
    with pytest.raises(ValueError, match="rate"):
        smartmeter.Recording.read(tmp_path / "x.f32")
    with pytest.raises(ValueError):
        smartmeter.Recording(np.zeros((4, 6), np.float32), 8000).write(tmp_path / "x.mp3")
    assert not (tmp_path / "x.mp3.part").exists()


def test_to_pandas(cli_recordings):
    pd = optional_module("pandas")
    rec = smartmeter.Recording.read(cli_recordings["wav"])
    df = rec.to_pandas()
    assert list(df.columns) == rec.channels and len(df) == len(rec)
    assert str(df.index.tz) == "UTC"
    assert df.index[0] == pd.Timestamp(round(rec.start_ts * 1e6), unit="us", tz="UTC")
    assert (df.index[8000] - df.index[0]) == pd.Timedelta(seconds=1)
    np.testing.assert_array_equal(df.to_numpy(), rec.samples)


def test_to_nilmtk(cli_recordings, tmp_path):
    pd = optional_module("pandas")
    optional_module("tables")
    rec = smartmeter.Recording.read(cli_recordings["csv"])
    keys = rec.to_nilmtk(tmp_path / "nilm.h5", building=2, meter=1)
    assert keys == ["/building2/elec/meter1", "/building2/elec/meter2", "/building2/elec/meter3"]
    with pd.HDFStore(tmp_path / "nilm.h5", "r") as store:
        df = store["/building2/elec/meter2"]
        assert list(df.columns) == [("voltage", ""), ("current", "")]
        np.testing.assert_allclose(df[("current", "")].to_numpy(), rec.samples[:, 3] * 1e-3, rtol=1e-6)
        md = store.get_node("/building2")._v_attrs.metadata
        assert md["elec_meters"][1]["site_meter"] is True
        assert "smartmeter" in store.root._v_attrs.metadata["meter_devices"]
