"""Per-session RX phase calibration on synthetic captures with known offsets."""
import json

import numpy as np
import pytest

from gnuradio.gdm import FrameSpec
from gnuradio.gdm.io import phase_cal
from gnuradio.gdm.io.recording import write_meta
from gnuradio.gdm.ofdm import framing
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit

SPEC = FrameSpec.preset("nr72")
PHASES_DEG = np.array([0.0, 37.0, -120.0, 171.0])
AMPS = np.array([1.0, 0.8, 1.25, 0.5])


def _frames(n_frames=3):
    n = framing.max_payload_bytes(SPEC.info_bits_per_frame)
    x, _, _ = transmit([random_payload(s, n) for s in range(n_frames)], list(range(n_frames)), SPEC)
    return x[0]


def _capture(s, snr_db, rng, phases=PHASES_DEG, amps=AMPS):
    """Splitter-fed capture: channel k = a_k e^{j phi_k} s + noise, SNR per channel."""
    g = amps * np.exp(1j * np.radians(phases))
    p = np.mean(np.abs(s) ** 2)
    nv = p * np.abs(g) ** 2 / 10 ** (snr_db / 10)
    w = (rng.standard_normal((len(g), s.size)) + 1j * rng.standard_normal((len(g), s.size))) * np.sqrt(nv / 2)[:, None]
    return (g[:, None] * s[None] + w).astype(np.complex64), g


def _wrap_deg(d):
    return (np.asarray(d) + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("signal", ["frames", "noise"])
def test_known_offsets_recovered(signal):
    rng = np.random.default_rng(1)
    s = _frames() if signal == "frames" else (rng.standard_normal(8000) + 1j * rng.standard_normal(8000)) / np.sqrt(2)
    x, g = _capture(s, 10.0, rng)
    cal = phase_cal.estimate(x)
    err = _wrap_deg(cal.phase_deg - PHASES_DEG)
    std = np.degrees(cal.phase_std_rad)
    assert np.all(np.abs(err) < 0.5), (err, std)
    assert np.all(np.abs(err[1:]) < 5 * std[1:] + 1e-3), (err, std)
    # amplitude relative to ch0, biased low by SNR/(SNR+1) of the reference at most
    assert np.allclose(cal.amplitude, AMPS, rtol=0.12)
    snr = 10.0
    assert np.all(cal.coherence[1:] > 0.85) and np.all(cal.coherence[1:] < 1)
    assert np.allclose(cal.coherence[1:], snr / (snr + 1), atol=0.03)
    assert cal.lags.tolist() == [0, 0, 0, 0]


def test_corrections_align_channels_and_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    s = _frames(2)
    x, _ = _capture(s, 25.0, rng)
    cal = phase_cal.estimate(x)
    y = phase_cal.apply(x, cal.corrections)
    assert y.dtype == np.complex64 and y.shape == x.shape
    resid = np.degrees(np.angle(np.sum(np.conj(y[0]) * y, axis=1)))
    assert np.all(np.abs(resid) < 0.2), resid
    # gain corrections equalize the amplitudes too
    z = phase_cal.apply(x, cal.gain_corrections())
    p = np.mean(np.abs(z) ** 2, axis=1)
    assert np.allclose(p / p[0], 1.0, atol=0.02)
    # saved JSON -> load_corrections (what usrp_rx_2ch.grc's --phase-cal does)
    path = cal.save(tmp_path / "cal.json")
    c = phase_cal.load_corrections(str(path), 4)
    assert np.allclose(c, cal.corrections, atol=1e-6)
    assert phase_cal.load_corrections("", 2) == [1, 1]
    with pytest.raises(ValueError, match="4 channels, the flowgraph has 2"):
        phase_cal.load_corrections(str(path), 2)
    with pytest.raises(SystemExit, match="gr-gdm: .*missing.json: not a usable phase calibration"):
        phase_cal.load_corrections(str(tmp_path / "missing.json"), 2, exit_on_error=True)
    d = json.loads(path.read_text())
    assert np.allclose(_wrap_deg(np.array(d["phase_deg"]) - PHASES_DEG), 0, atol=0.3)
    assert "ch3: phase" in cal.describe()


def test_integer_lag_found():
    rng = np.random.default_rng(3)
    s = (rng.standard_normal(6000) + 1j * rng.standard_normal(6000)) / np.sqrt(2)
    x, _ = _capture(s, 20.0, rng, phases=PHASES_DEG[:2], amps=AMPS[:2])
    x[1] = np.roll(x[1], 3)  # channel 1 three samples late
    cal = phase_cal.estimate(x, max_lag=8)
    assert cal.lags.tolist() == [0, 3]
    assert abs(_wrap_deg(cal.phase_deg[1] - 37.0)) < 1.0
    with pytest.raises(ValueError, match="no common signal"):  # white signal, misaligned at lag 0
        phase_cal.estimate(x, max_lag=0)


def test_other_reference_and_errors():
    rng = np.random.default_rng(4)
    x, _ = _capture(_frames(1), 30.0, rng)
    cal = phase_cal.estimate(x, ref=1)
    assert abs(_wrap_deg(cal.phase_deg[0] + 37.0)) < 0.5 and cal.phase_deg[1] == 0
    with pytest.raises(ValueError, match="no common signal"):
        phase_cal.estimate(np.stack([x[0], np.zeros_like(x[0])]))
    with pytest.raises(ValueError, match="all zeros"):
        phase_cal.estimate(np.stack([np.zeros_like(x[0]), x[0]]))
    with pytest.raises(ValueError, match="shape"):
        phase_cal.estimate(x[0])
    bad = x.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        phase_cal.estimate(bad)


def test_from_recording_and_cli(tmp_path, capsys):
    rng = np.random.default_rng(5)
    x, _ = _capture(_frames(2), 20.0, rng, phases=PHASES_DEG[:2], amps=AMPS[:2])
    base = tmp_path / "cap"
    x.T.copy().tofile(base.with_suffix(".sigmf-data"))
    write_meta(base, sample_rate=SPEC.sample_rate, num_channels=2, n_samples=x.shape[1], spec=SPEC,
               center_freq=2.45e9, hw="synthetic splitter capture")
    cal = phase_cal.from_recording(base)
    assert abs(_wrap_deg(cal.phase_deg[1] - 37.0)) < 0.5
    assert phase_cal.main([str(base.with_suffix(".sigmf-meta")), "--save", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "ch1: phase" in out and (tmp_path / "c.json").is_file()


def test_attach_calibrates_inside_a_running_flowgraph(tmp_path):
    gr = pytest.importorskip("gnuradio.gr")
    from gnuradio import blocks

    rng = np.random.default_rng(6)
    s = np.tile(_frames(1), 6)
    x, _ = _capture(s, 20.0, rng, phases=PHASES_DEG[:2], amps=AMPS[:2])
    x[:, :1000] = 0  # settling: nothing useful before the skip
    tb = gr.top_block()
    srcs = [blocks.vector_source_c(x[c].tolist(), False) for c in range(2)]
    corr = [blocks.multiply_const_cc(1.0) for _ in range(2)]
    sinks = [blocks.null_sink(8) for _ in range(2)]
    for c in range(2):
        tb.connect(srcs[c], corr[c], sinks[c])
    msgs = []
    tap = phase_cal.attach(tb, [(b, 0) for b in srcs], corr, n_samples=4096, skip=1000,
                           save=tmp_path / "session.json", log=msgs.append)
    tb.run()
    assert tap.done.is_set() and tap.error is None
    assert abs(_wrap_deg(tap.result.phase_deg[1] - 37.0)) < 1.0
    assert corr[0].k() == pytest.approx(1.0) and np.angle(corr[1].k(), deg=True) == pytest.approx(-37.0, abs=1.0)
    assert (tmp_path / "session.json").is_file() and "relative to ch0" in msgs[0]

    # no common signal: the correctors stay as they were, and it says so
    tb = gr.top_block()
    noise = (rng.standard_normal((2, 8192)) + 1j * rng.standard_normal((2, 8192))).astype(np.complex64)
    srcs = [blocks.vector_source_c(noise[c].tolist(), False) for c in range(2)]
    corr = [blocks.multiply_const_cc(1.0) for _ in range(2)]
    for c in range(2):
        tb.connect(srcs[c], corr[c], blocks.null_sink(8))
    msgs = []
    tap = phase_cal.attach(tb, [(b, 0) for b in srcs], corr, n_samples=4096, log=msgs.append)
    tb.run()
    assert tap.result is None and "no common signal" in tap.error and "corrections unchanged" in msgs[0]
    assert corr[1].k() == 1.0
