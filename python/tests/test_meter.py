"""`smartmeter.Meter` against the simulator: commands, errors, recording, streaming, the GIL."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

import smartmeter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_info_and_get(sim):
    with smartmeter.Meter(sim.host) as m:
        assert m.name == "pytest"
        info = m.info()
        assert info["cmd"] == "info" and info["name"] == "pytest"
        expected = {
            "voltage": "getVoltage",
            "current": "getCurrent",
            "power": "getPower",
            "energy": "getEnergy",
            "frequency": "getPeriod",
            "phase": "getPhaseAngle",
        }
        for quantity, cmd in expected.items():
            reply = m.get(quantity)
            assert reply["cmd"] == cmd and reply["error"] is False, reply
        assert m.get("voltage")["voltage"] == pytest.approx([230, 230, 230], rel=1e-3)
        assert m.get("power")["activePower"][0] == pytest.approx(1150, rel=1e-3)
        assert m.command({"cmd": "getEnergy"})["unit"] == "Wh"
        with pytest.raises(ValueError):
            m.get("weather")


def test_errors_are_exceptions(sim):
    with smartmeter.Meter(sim.host, timeout=5) as m:
        with pytest.raises(smartmeter.RefusedError) as e:
            m.command({"cmd": "noSuchCommand"})
        assert e.value.cmd == "noSuchCommand" and e.value.msg
        assert sim.host in str(e.value)
        with pytest.raises(smartmeter.RefusedError):
            m.command({"cmd": "mdns", "name": "no spaces allowed"})
        with pytest.raises(ValueError):
            m.command({"nocmd": 1})
        with pytest.raises(ValueError, match="record"):
            m.command({"cmd": "sample", "payload": {"type": "TCP", "rate": "8000"}})
        with pytest.raises(ValueError):
            m.record(1, rate=40000)
        with pytest.raises(ValueError):
            m.record(1, measures="x,y")
        # the connection is still usable after every refusal
        assert m.get("frequency")["period"] == pytest.approx([50, 50, 50])
    with pytest.raises(smartmeter.MeterError, match="closed"):
        m.info()


def test_unreachable_host_names_the_host():
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(smartmeter.UnreachableError) as e:
        smartmeter.Meter(host, timeout=2)
    assert host in str(e.value)
    assert isinstance(e.value, ConnectionError)
    with pytest.raises(ValueError):
        smartmeter.Meter("a:70000")


def _skip_if_unknown(e: smartmeter.RefusedError) -> None:
    if e.msg and "unknown command" in e.msg:
        pytest.skip(f"the engine does not serve {e.cmd} yet: {e}")
    raise e


def test_get_pq(sim):
    with smartmeter.Meter(sim.host) as m:
        try:
            reply = m.get("pq", interval="200ms")
        except smartmeter.RefusedError as e:
            _skip_if_unknown(e)
        assert reply["cmd"] == "getPQ" and reply["interval"] == "200ms"


def test_events(sim):
    with smartmeter.Meter(sim.host) as m:
        try:
            events = m.events()
        except smartmeter.RefusedError as e:
            _skip_if_unknown(e)
        assert isinstance(events, list)


def test_record_32k_six_channels_loses_nothing_and_releases_the_gil(sim):
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        with smartmeter.Meter(sim.host) as m:
            t0 = time.monotonic()
            rec = m.record(2, rate=32000)
            t1 = time.monotonic()
    finally:
        done.set()
        t.join()
    assert rec.samples.shape == (64000, 6) and rec.samples.dtype == np.float32
    assert rec.lost == 0
    assert rec.channels == ["v_l1", "i_l1", "v_l2", "i_l2", "v_l3", "i_l3"]
    assert rec.units == ["V", "mA", "V", "mA", "V", "mA"]
    assert rec.rate == 32000 and rec.start_ts is not None and rec.status == "complete"
    # no zero-filled gap: every cycle of the voltage has its peak
    v = rec.samples[:, 0].reshape(-1, 640)
    assert np.all(v.max(axis=1) > 320)
    # The other thread ran while `record` waited for the meter (the recording lasts two seconds
    # of the meter's clock, so the middle second is inside the call whatever the machine's speed).
    inside = [x for x in ticks if t0 + 0.5 < x < t1 - 0.5]
    assert inside, "no Python thread ran during record(): the GIL was held"


def test_stream_blocks_and_stop(sim):
    with smartmeter.Meter(sim.host) as m:
        with m.stream(rate=8000, block=800) as s:
            assert s.channels[0] == "v_l1" and s.rate == 8000
            blocks = [b for _, b in zip(range(5), s)]
        assert all(b.shape == (800, 6) and b.dtype == np.float32 for b in blocks)
        assert s.lost == 0
        assert s.stop_reply is not None and s.stop_reply["cmd"] == "stop"
        # the meter stopped: it answers readings again (a sampling meter answers `busy`)
        assert m.get("power")["cmd"] == "getPower"


def test_ctrl_c_stops_the_recording_cleanly(sim):
    # Python's own Ctrl-C handler, also when this process was started with SIGINT ignored (as a
    # background job of a shell is).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    try:
        with smartmeter.Meter(sim.host) as m:
            timer.start()
            with pytest.raises(smartmeter.RecordingInterrupted) as e:
                m.record(60, rate=8000)
            assert isinstance(e.value, KeyboardInterrupt)
            rec = e.value.recording
            assert rec.status == "interrupted"
            assert 0 < len(rec) < 60 * 8000
            # the meter was stopped (not busy) and the connection still works
            assert m.get("voltage")["cmd"] == "getVoltage"
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
