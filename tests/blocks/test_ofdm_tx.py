import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.modem import demodulate
from gnuradio.gdm.ofdm.equalizer import equalize
from gnuradio.gdm.ofdm.modem import occupied
from gnuradio.gdm.ofdm.transceiver import decode_batch, random_payload


def _decode(x, spec, n):
    g = np.stack([occupied(demodulate(x, spec, b * spec.frame_len), spec) for b in range(n)])
    H = np.broadcast_to(np.eye(spec.n_tx)[None, :, :, None, None] * spec.tx_amplitude,
                        (n, spec.n_tx, spec.n_tx, spec.n_sym, spec.n_occ))
    X, V = equalize(g, H, 1e-3, "zf" if spec.n_tx > 1 else "mrc")
    return decode_batch(X, V, spec)


@pytest.mark.parametrize("n_tx", [1, 2])
def test_random_frames_tags_and_messages(n_tx, collector):
    tb = gr.top_block()
    tx = gdm.ofdm_tx("nr72", n_tx, "16qam", "random", 0, n_frames=5, seed=3)
    sinks = [blocks.vector_sink_c() for _ in range(n_tx)]
    col = collector()
    for i, s in enumerate(sinks):
        tb.connect((tx, i), s)
    tb.msg_connect((tx, "tx"), (col, "in"))
    tb.run()
    spec = FrameSpec.preset("nr72", n_tx=n_tx)
    x = np.stack([np.asarray(s.data()) for s in sinks])
    assert x.shape[1] == 6 * spec.frame_len  # 5 frames + one frame of silence
    tags = [t for t in sinks[0].tags() if pmt.symbol_to_string(t.key) == "gdm_tx_frame"]
    assert [t.offset for t in tags] == [i * spec.frame_len for i in range(5)]
    assert [pmt.to_python(t.value)["seq"] for t in tags] == list(range(5))
    d = _decode(x, spec, 5)
    cap = len(d[0].payload)
    assert [f.payload for f in d] == [random_payload(i, cap, 3) for i in range(5)]
    assert len(col.drained()) == 5


def test_pdu_mode_sends_queued_payloads_and_refuses_oversize():
    tb = gr.top_block()
    tx = gdm.ofdm_tx("nr72", 1, "qpsk", "pdu", n_frames=2)
    snk = blocks.vector_sink_c()
    tb.connect(tx, snk)
    tx._on_pdu(pmt.cons(pmt.make_dict(), pmt.init_u8vector(3, [1, 2, 3])))
    tx._on_pdu(pmt.cons(pmt.make_dict(), pmt.init_u8vector(5000, [0] * 5000)))  # too big: dropped
    tx._on_pdu(pmt.cons(pmt.make_dict(), pmt.init_u8vector(2, [9, 9])))
    tb.run()
    spec = FrameSpec.preset("nr72", modulation="qpsk")
    x = np.asarray(snk.data())[None]
    d = _decode(x, spec, 2)
    assert [f.payload for f in d] == [b"\x01\x02\x03", b"\x09\x09"]


def test_bad_parameters_are_explained():
    with pytest.raises(ValueError, match="mode must be 'random' or 'pdu'"):
        gdm.ofdm_tx(mode="file")
    with pytest.raises(ValueError, match=r"payload_len must be in \[0, 206\]"):
        gdm.ofdm_tx(payload_len=999)
    with pytest.raises(ValueError, match="valid presets: nr72, nr20, wifi64"):
        gdm.ofdm_tx(preset="dvb")
