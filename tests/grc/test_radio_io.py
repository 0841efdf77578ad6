"""Radio I/O flowgraphs (grc/examples/usrp_*, zmq_*, record_sigmf, replay_sigmf): compiled with
grcc; the USRP ones run without hardware and must stop with one clear line; ZMQ TX and RX as
two processes (frame success rate, TX killed and restarted under a running RX); a SigMF record
-> replay round trip headless. The helpers in gnuradio.gdm.io.usrp are tested with a fake USRP."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

USRP = ["usrp_rx_2ch", "usrp_tx", "usrp_loopback"]
RADIO_IO = [*USRP, "zmq_tx", "zmq_rx", "record_sigmf", "replay_sigmf"]
NO_SUCH_USRP = "serial=gdm-test-no-such-usrp"


pytest.importorskip("gnuradio.gdm")

STATS = re.compile(r"^(final )?(.*?): sent (\S+) ok (\d+) lost (\d+)", re.M)


def summary(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.startswith("gdm_summary ")]
    assert len(lines) == 1, out
    return json.loads(lines[0].split(" ", 1)[1])


def script(compiled, name) -> list[str]:
    return [sys.executable, "-u", str(compiled / f"{name}.py")]


@pytest.mark.parametrize("name", RADIO_IO)
def test_compiles(compiled, name):
    code = (compiled / f"{name}.py").read_text()
    if name in USRP:
        # The device check runs in __init__ before any UHD block is constructed.
        init = code[code.index("def __init__"):]
        check = init.index("snippets_init_before_blocks(self)")
        made = [init.index(f"uhd.{b}(") for b in ("usrp_source", "usrp_sink") if f"uhd.{b}(" in init]
        assert made and check < min(made)


def test_usrp_flowgraphs_without_hardware_stop_with_a_clear_message(compiled):
    pytest.importorskip("gnuradio.uhd")
    from gnuradio.gdm.io.usrp import find_devices
    runs = [(n, NO_SUCH_USRP) for n in USRP]
    if not find_devices(""):  # nothing attached: the defaults must fail the same way
        runs.append(("usrp_rx_2ch", ""))
    procs = [(n, a, subprocess.Popen([*script(compiled, n), "--dev-args", a], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=compiled)) for n, a in runs]
    for name, args, p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 1, (name, out)
        assert f"gr-gdm: no USRP found for device args '{args}': connect one or check uhd_find_devices" in out, out
        assert "Traceback" not in out, out


def test_usrp_rx_rejects_a_rate_other_than_the_presets(compiled):
    pytest.importorskip("gnuradio.uhd")
    r = subprocess.run([*script(compiled, "usrp_rx_2ch"), "--samp-rate", "1e6"], capture_output=True,
                       text=True, timeout=120, cwd=compiled)
    assert r.returncode == 1 and "does not match frame preset 'nr72'" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------------------------
# gnuradio.gdm.io.usrp with a fake device
# --------------------------------------------------------------------------------------------
class FakeUsrp:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name.startswith(("set_", "clear_")):
            return lambda *a: self.calls.append((name, *a))
        raise AttributeError(name)

    def get_time_now(self):
        from gnuradio import uhd
        return uhd.time_spec(10.0)

    def get_center_freq(self, ch):
        return 2.45e9

    def get_gain(self, ch):
        return 30.0

    def get_antenna(self, ch):
        return "RX2"

    def get_samp_rate(self):
        return 1.92e6


def test_usrp_helpers(capsys):
    pytest.importorskip("gnuradio.uhd")
    from gnuradio import uhd
    from gnuradio.gdm.io import usrp

    assert usrp.find_devices(NO_SUCH_USRP) == []
    with pytest.raises(usrp.NoUsrpError, match="no USRP found for device args 'serial=gdm-test-no-such-usrp'"):
        usrp.check_usrp(NO_SUCH_USRP)
    with pytest.raises(SystemExit, match="connect one or check uhd_find_devices"):
        usrp.require_usrp(NO_SUCH_USRP)
    usrp.check_rate(1.92e6, "nr72")
    usrp.check_rate(1e6, "wifi64")
    with pytest.raises(SystemExit, match="--samp-rate 1.92e\\+06"):
        usrp.check_rate(2e6, "nr72")

    u = FakeUsrp()
    usrp.setup_channels(u, 2, freq=2.45e9, subdev="A:0 A:1", lo_share="twinrx", gains=(10, 20), antenna="RX1")
    names = [c[0] for c in u.calls]
    assert u.calls[0] == ("set_subdev_spec", "A:0 A:1", 0)
    assert ("set_gain", 20.0, 1) in u.calls and ("set_antenna", "RX1", 1) in u.calls
    assert ("set_lo_source", "internal", uhd.ALL_LOS, 0) in u.calls
    assert ("set_lo_export_enabled", True, uhd.ALL_LOS, 0) in u.calls
    assert ("set_lo_source", "companion", uhd.ALL_LOS, 1) in u.calls
    # one timed retune of both channels after the LO change
    i = names.index("set_command_time")
    assert names[i + 1: i + 4] == ["set_center_freq", "set_center_freq", "clear_command_time"]
    assert "rx1: 2450.000000 MHz, gain 30.0 dB" in capsys.readouterr().err

    u = FakeUsrp()
    usrp.setup_channels(u, 2, freq=1e9, lo_share="none")
    assert u.calls == []  # B210: nothing to do
    u = FakeUsrp()
    usrp.setup_channels(u, 2, freq=1e9, lo_share="external", report=False)
    assert [c for c in u.calls if c[0] == "set_lo_source"] == [("set_lo_source", "external", uhd.ALL_LOS, c)
                                                               for c in range(2)]
    with pytest.raises(SystemExit, match="lo_share must be one of"):
        usrp.setup_channels(FakeUsrp(), 2, lo_share="shared")


# --------------------------------------------------------------------------------------------
# The USRP flowgraphs end to end with a simulated "USRP": a fake gnuradio.uhd whose usrp_source
# plays gr-gdm frames as through a splitter, with a known phase offset on channel 1 and noise on
# each channel, and whose usrp_sink discards. Runs the generated main() (device check, channel setup, per-session
# phase calibration, receiver, final summary).
# --------------------------------------------------------------------------------------------
FAKE_UHD_DRIVER = r"""
import importlib, sys, types
import numpy as np
import gnuradio
from gnuradio import analog, blocks, gr
from gnuradio import gdm

PHASE_DEG = 50.0
N_FRAMES = int(sys.argv[3])
calls = []

class _Radio:
    def _record(self, name):
        def f(*a):
            calls.append((name,) + a)
        return f
    def get_center_freq(self, ch=0): return 2.45e9
    def get_gain(self, ch=0): return 30.0
    def get_antenna(self, ch=0): return "RX2"
    def get_samp_rate(self): return 1.92e6
    def get_time_now(self, mb=0): return fake.time_spec(0.0)

for _n in ("set_clock_source", "set_time_source", "set_samp_rate", "set_time_now", "set_center_freq",
           "set_antenna", "set_gain", "set_start_time", "set_subdev_spec", "set_lo_source",
           "set_lo_export_enabled", "set_command_time", "clear_command_time", "set_bandwidth"):
    setattr(_Radio, _n, (lambda n: lambda self, *a: calls.append((n,) + a))(_n))

class usrp_source(gr.hier_block2, _Radio):
    def __init__(self, args, stream_args):
        n = len(stream_args["channels"])
        gr.hier_block2.__init__(self, "fake_usrp_source", gr.io_signature(0, 0, 0),
                                gr.io_signature(n, n, gr.sizeof_gr_complex))
        # gaps between frames: the calibration starts after 0.2 s of settling
        self.tx = gdm.ofdm_tx(n_frames=N_FRAMES, gap=12000)
        for c in range(n):  # a splitter: one signal, a phase offset per channel, own noise
            rot = blocks.multiply_const_cc(complex(np.exp(1j * np.radians(PHASE_DEG * c))))
            add = blocks.add_cc()
            self.connect(self.tx, rot, (add, 0))
            self.connect(analog.noise_source_c(analog.GR_GAUSSIAN, 0.04, c + 1), (add, 1))
            self.connect(add, (self, c))

class usrp_sink(gr.hier_block2, _Radio):
    def __init__(self, args, stream_args, len_tag=""):
        n = len(stream_args["channels"])
        gr.hier_block2.__init__(self, "fake_usrp_sink", gr.io_signature(n, n, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        for c in range(n):
            self.connect((self, c), blocks.null_sink(gr.sizeof_gr_complex))

fake = types.ModuleType("gnuradio.uhd")
fake.usrp_source, fake.usrp_sink = usrp_source, usrp_sink
fake.stream_args = lambda **kw: kw
fake.time_spec = lambda t=0.0: float(t)
fake.ALL_MBOARDS, fake.ALL_LOS = 0xFFFFFFFF, "all"
sys.modules["gnuradio.uhd"] = fake
gnuradio.uhd = fake
from gnuradio.gdm.io import usrp as gdm_usrp
gdm_usrp.find_devices = lambda args="": [{"type": "fake", "serial": "sim"}]

sys.path.insert(0, sys.argv[1])
mod = importlib.import_module(sys.argv[2])
sys.argv = [sys.argv[2]] + sys.argv[4:]
mod.main()
print("UHD_CALLS", sorted({c[0] for c in calls}), flush=True)
"""


@pytest.mark.parametrize("name,args", [
    ("usrp_rx_2ch", ["--calibrate", "0.05", "--lo-share", "timed_tune", "--subdev", "A:0 B:0"]),
    ("usrp_loopback", ["--n-frames", "40", "--calibrate", "0.05", "--start-delay", "5"]),
])
def test_usrp_flowgraph_runs_on_a_simulated_usrp(compiled, tmp_path, name, args):
    driver = tmp_path / "fake_uhd.py"
    driver.write_text(FAKE_UHD_DRIVER)
    n = 40
    r = subprocess.run([sys.executable, str(driver), str(compiled), name, str(n), *args,
                        "--phase-cal-save", str(tmp_path / "cal.json")],
                       capture_output=True, text=True, timeout=180, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "Traceback" not in out, out
    assert "gr-gdm: using USRP type=fake, serial=sim" in out
    m = re.search(r"ch1: phase\s+([-+\d.]+) deg", out)
    assert m and abs(float(m.group(1)) - 50.0) < 3.0, out  # the calibration saw the 50 degree offset
    assert json.loads((tmp_path / "cal.json").read_text())["phase_deg"][1] == pytest.approx(50.0, abs=3.0)
    s = summary(r.stdout)
    assert s["frames_ok"] >= n - 2, out
    if name == "usrp_loopback":  # same seed as the simulated radio: the sent frames are scored
        assert s["frames_sent"] == n and s["per"] <= 0.05, s
    calls = re.search(r"^UHD_CALLS (.*)$", r.stdout, re.M).group(1)
    for c in ("set_clock_source", "set_time_source", "set_samp_rate", "set_center_freq", "set_gain"):
        assert c in calls, calls
    if name == "usrp_rx_2ch":
        assert "set_subdev_spec" in calls and "set_command_time" in calls, calls
    else:
        assert "set_start_time" in calls, calls


# --------------------------------------------------------------------------------------------
# ZMQ: transmitter and receiver in two processes
# --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A flowgraph process whose output is collected by a thread (no pipe stalls)."""

    def __init__(self, cmd, cwd):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
        self.lines: list[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for ln in self.p.stdout:
            self.lines.append(ln)

    @property
    def out(self) -> str:
        return "".join(self.lines)

    def ok(self) -> int:
        """frames ok in the last periodic link_stats line (0 before the first)."""
        m = STATS.findall(self.out)
        return int(m[-1][3]) if m else 0

    def wait_for(self, pred, timeout, what):
        t0 = time.monotonic()
        while not pred():
            assert self.p.poll() is None, f"process ended while waiting for {what}:\n{self.out}"
            assert time.monotonic() - t0 < timeout, f"timeout waiting for {what}:\n{self.out}"
            time.sleep(0.1)

    def cpu_s(self) -> float:
        """CPU time of the process (all threads) so far."""
        f = Path(f"/proc/{self.p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, timeout=120, window=1.0, busy=0.1):
        """Until the process has used less than ``busy`` CPU seconds in ``window`` seconds: all
        received samples are processed (link_stats prints only as frames arrive, so its last
        periodic line may be behind)."""
        if not Path(f"/proc/{self.p.pid}/stat").exists():
            time.sleep(5)
            return
        t0 = time.monotonic()
        while True:
            assert self.p.poll() is None, f"process ended:\n{self.out}"
            assert time.monotonic() - t0 < timeout, f"still busy after {timeout} s:\n{self.out}"
            c = self.cpu_s()
            time.sleep(window)
            if self.cpu_s() - c < busy:
                return

    def interrupt(self, timeout=60) -> str:
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=timeout)
        self.t.join(timeout=5)
        return self.out

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def test_zmq_two_processes_tx_killed_and_restarted(compiled):
    pytest.importorskip("gnuradio.zeromq")
    addr = f"tcp://127.0.0.1:{free_port()}"
    rx_cmd = [*script(compiled, "zmq_rx"), "--address", addr]
    tx_cmd = [*script(compiled, "zmq_tx"), "--address", addr, "--snr-db", "25"]
    procs = []
    try:
        # 1. 1000 frames at 25 dB: at least 99.9 % decoded. The receiver starts first and
        #    connects; the transmitter binds and ends when every frame has left.
        n = 1000
        rx = Proc(rx_cmd, compiled)
        procs.append(rx)
        tx = subprocess.run([*tx_cmd, "--n-frames", str(n)], capture_output=True, text=True, timeout=180,
                            cwd=compiled)
        assert tx.returncode == 0 and f"zmq_tx: sent {n} frames" in tx.stdout, tx.stdout + tx.stderr
        rx.wait_idle()
        s = summary(rx.interrupt())
        print(f"\nZMQ {n} frames at 25 dB: ok {s['frames_ok']} lost {s['frames_lost']} "
              f"tx_restarts {s['tx_restarts']}")
        assert s["frames_ok"] >= 0.999 * n, s
        assert s["frames_sent"] is None and s["frames_lost"] <= n - s["frames_ok"] and s["tx_restarts"] == 0, s

        # 2. A transmitter dies mid-stream (SIGKILL) and another starts: the receiver keeps
        #    running, reconnects, decodes the new transmitter's frames and counts the restart.
        rx = Proc(rx_cmd, compiled)
        procs.append(rx)
        tx = Proc([*tx_cmd, "--n-frames", "0"], compiled)
        procs.append(tx)
        rx.wait_for(lambda: rx.ok() >= 60, 120, "frames from the first transmitter")
        tx.kill()
        ok_at_kill = rx.ok()
        time.sleep(1.0)
        assert rx.p.poll() is None, "receiver ended when the transmitter died:\n" + rx.out
        m = 150
        tx2 = subprocess.run([*tx_cmd, "--n-frames", str(m)], capture_output=True, text=True, timeout=180,
                             cwd=compiled)
        assert tx2.returncode == 0, tx2.stdout + tx2.stderr
        rx.wait_idle()
        assert rx.p.poll() is None, "receiver ended after the transmitter restart:\n" + rx.out
        out = rx.interrupt()
        assert rx.p.returncode == 0 and "Traceback" not in out, out
        s = summary(out)
        final = [ln for ln in out.splitlines() if ln.startswith("final zmq rx")]
        assert final and "tx_restarts" in final[0], out
        print(f"ZMQ restart: ok at kill {ok_at_kill}, total ok {s['frames_ok']} detected {s['frames_detected']} "
              f"lost (seq gaps) {s['frames_lost']} tx_restarts {s['tx_restarts']}; {final[0]}")
        assert s["tx_restarts"] >= 1, s
        assert s["frames_ok"] >= ok_at_kill + m - 2, s  # the new transmitter's frames
        assert "frames_lost" in s and s["frames_lost"] >= 0
    finally:
        for p in procs:
            p.kill()


# --------------------------------------------------------------------------------------------
# SigMF record -> replay, headless
# --------------------------------------------------------------------------------------------
def test_record_then_replay(compiled, tmp_path):
    base = tmp_path / "rec" / "cap"
    n = 30
    r = subprocess.run([*script(compiled, "record_sigmf"), "--path", str(base), "--n-frames", str(n),
                        "--snr-db", "20", "--center-freq", "2.45e9"],
                       capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    rec = summary(r.stdout)
    assert rec["frames_sent"] == n and rec["frames_ok"] >= n - 2, rec

    from gnuradio.gdm.io.recording import open_recording
    meta = open_recording(base, preset="nr72", n_rx=2)
    assert meta.num_channels == 2 and meta.center_freq == 2.45e9 and meta.n_samples == (n + 1) * 2160
    anns = meta.annotations
    assert len(anns) == rec["frames_detected"] and sum(a["gdm:crc_ok"] for a in anns) == rec["frames_ok"]
    assert meta.meta["global"]["gdm:reference"]["frames"] == n

    r = subprocess.run([*script(compiled, "replay_sigmf"), "--path", str(base) + ".sigmf-meta"],
                       capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    rep = summary(r.stdout)
    # the same samples, the same receiver: the same frames; scored against gdm:reference
    assert rep["frames_sent"] == n and rep["frames_ok"] == rec["frames_ok"] and rep["per"] == rec["per"], (rec, rep)
    assert rep["ber"] == rec["ber"]

    r = subprocess.run([*script(compiled, "replay_sigmf"), "--path", str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 1 and "gr-gdm: " in r.stderr and "no SigMF metadata file" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
