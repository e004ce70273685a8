"""Fixtures: the simulator (`smartmeter-sim`) and the CLI (`smartmeter`), built by cargo from this
repository, started by the tests themselves on free ports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bin_dir() -> Path:
    return Path(os.environ.get("SMARTMETER_BIN_DIR", ROOT / "target" / "debug"))


def optional_module(name: str):
    """An optional dependency of the package (pandas, PyTables): the test skips without it, unless
    `SMARTMETER_REQUIRE_PEERS=1` (as in CI), where a missing module fails the test instead."""
    if os.environ.get("SMARTMETER_REQUIRE_PEERS") == "1":
        import importlib

        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture(scope="session")
def binaries() -> Path:
    """The directory holding `smartmeter` and `smartmeter-sim` (built with every feature, as
    `cargo test --all-features` builds them, when missing)."""
    d = _bin_dir()
    if not ((d / "smartmeter").exists() and (d / "smartmeter-sim").exists()):
        subprocess.run(
            ["cargo", "build", "--all-features", "--bin", "smartmeter", "--bin", "smartmeter-sim"],
            cwd=ROOT,
            check=True,
        )
    return d


class Sim:
    """A running simulator: `host` is `127.0.0.1:PORT`."""

    def __init__(self, binaries: Path, args: List[str]) -> None:
        self.state = Path(tempfile.mkdtemp(prefix="smartmeter-pytest-"))
        self.proc = subprocess.Popen(
            [str(binaries / "smartmeter-sim"), "--port", "0", "--stream-port", "0", "--state", str(self.state), "--name", "pytest", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"smartmeter-sim did not start: {line!r}")
        self.host = line.split()[2]
        # keep draining stdout so the simulator never blocks on a full pipe
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture(scope="session")
def sim(binaries: Path) -> Iterator[Sim]:
    s = Sim(binaries, [])
    yield s
    s.stop()


@pytest.fixture
def start_sim(binaries: Path) -> Iterator:
    """Starts simulators with extra arguments (stopped after the test)."""
    started: List[Sim] = []

    def start(*args: str) -> Sim:
        s = Sim(binaries, list(args))
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def cli(binaries: Path):
    """Runs the `smartmeter` CLI; returns its stdout (fails the test on a non-zero exit)."""

    def run(*args: str) -> str:
        p = subprocess.run([str(binaries / "smartmeter"), *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"smartmeter {' '.join(args)}: exit {p.returncode}: {p.stderr}"
        return p.stdout

    return run


def json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def cli_recordings(sim: Sim, cli, tmp_path_factory) -> dict:
    """One recording per format, written by `smartmeter record` from the simulator (3 s at
    8000 Hz for the WAV, which the analysis tests use; 1 s for CSV and f32)."""
    d = tmp_path_factory.mktemp("cli")
    out = {}
    for ext, secs in (("wav", "3s"), ("csv", "1s"), ("f32", "1s")):
        path = d / f"cli.{ext}"
        cli("record", sim.host, "--rate", "8000", "--duration", secs, "--out", str(path))
        out[ext] = path
    return out
