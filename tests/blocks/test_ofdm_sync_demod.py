import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.sync import FrameSynchronizer
from gnuradio.gdm.ofdm.transceiver import random_payload, transmit
from gnuradio.gdm.sim.channel import StreamChannel

SPEC = FrameSpec.preset("nr72")


def _stream(n, snr=25.0, nan_at=None):
    x, _, _ = transmit([random_payload(i, 60) for i in range(n)], range(n), SPEC)
    x = np.concatenate([np.zeros((1, 700), np.complex64), x, np.zeros((1, 60), np.complex64)], 1)
    y = StreamChannel(1, 2, SPEC.sample_rate, "TDL-A", 30e-9, 5.0, snr, cfo_hz=1200, seed=2).process(x)
    if nan_at is not None:
        y[:, nan_at] = np.nan
    return y


def _run(y):
    tb = gr.top_block()
    sync = gdm.ofdm_sync_demod("nr72", 2)
    sinks = [blocks.vector_sink_c(SPEC.fft_len) for _ in range(2)]
    for r in range(2):
        tb.connect(blocks.vector_source_c(y[r].tolist(), False), (sync, r))
        tb.connect((sync, r), sinks[r])
    tb.run()
    return sync, sinks


def test_frames_out_match_core_with_tags_and_last_frame_not_lost():
    y = _stream(12)
    sync, sinks = _run(y)
    out = np.stack([np.asarray(s.data()).reshape(-1, SPEC.n_sym, SPEC.fft_len) for s in sinks], 1)
    assert out.shape[0] == 12  # including the final frame that ends 60 samples before the stream
    core = FrameSynchronizer(SPEC, 2)
    core.push(y)
    ref = core.pop_frames() + core.flush()
    assert np.allclose(out[7], ref[7].grid, atol=1e-4)
    tags = [t for t in sinks[1].tags() if pmt.symbol_to_string(t.key) == "gdm_frame"]
    assert [t.offset for t in tags] == [i * SPEC.n_sym for i in range(12)]
    info = pmt.to_python(tags[3].value)
    assert info["index"] == 3 and abs(info["cfo_hz"] - 1200) < 50 and abs(info["snr_db"] - 25) < 4
    assert sync.stats()["frames"] == 12


def test_nan_burst_flags_one_frame_and_the_rest_decode():
    y = _stream(6, nan_at=slice(700 + 3 * SPEC.frame_len + 400, 700 + 3 * SPEC.frame_len + 450))
    sync, sinks = _run(y)
    tags = [pmt.to_python(t.value) for t in sinks[0].tags() if pmt.symbol_to_string(t.key) == "gdm_frame"]
    assert len(tags) == 6 and [t["nonfinite"] for t in tags] == [False, False, False, True, False, False]
    assert sync.stats()["flagged_nonfinite"] == 1 and sync.stats()["nonfinite_samples"] == 50
    assert np.isfinite(np.asarray(sinks[0].data())).all()


def test_wrong_item_size_is_refused_at_connect_time():
    tb = gr.top_block()
    sync = gdm.ofdm_sync_demod("nr72", 1)
    with pytest.raises(Exception, match="itemsize mismatch"):
        tb.connect(sync, blocks.vector_sink_c(64))


def test_too_many_connections_are_refused_at_connect_time():
    tb = gr.top_block()
    sync = gdm.ofdm_sync_demod("nr72", 2)
    with pytest.raises(Exception, match="port number 2 exceeds max"):
        tb.connect(blocks.null_source(gr.sizeof_gr_complex), (sync, 2))


def test_unconnected_antenna_is_refused_at_start():
    tb = gr.top_block()
    sync = gdm.ofdm_sync_demod("nr72", 2)
    tb.connect(blocks.null_source(gr.sizeof_gr_complex), (sync, 0))
    tb.connect((sync, 0), blocks.null_sink(gr.sizeof_gr_complex * SPEC.fft_len))
    tb.connect((sync, 1), blocks.null_sink(gr.sizeof_gr_complex * SPEC.fft_len))
    with pytest.raises(Exception, match=r"insufficient connected input ports \(2 needed, 1 connected\)"):
        tb.start()
