import numpy as np
import pmt
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec
from gnuradio.gdm.ofdm.transceiver import transmit

from blockutil import tag, vec_source


def test_decodes_payloads_counts_errors_and_flags(collector):
    spec = FrameSpec.preset("nr72")
    payloads = [b"alpha", b"beta", b"gamma", b"delta"]
    _, grids, _ = transmit(payloads, range(4), spec)
    X = grids[:, 0].copy()
    X[2] = np.random.default_rng(0).standard_normal(X[2].shape)  # frame 2: noise only
    tags = [tag(b * spec.n_sym, "gdm_frame", {"index": b, "nonfinite": b == 3}) for b in range(4)]
    tb = gr.top_block()
    dec = gdm.frame_decoder("nr72", 1)
    pdus, frames = collector(), collector()
    tb.connect(vec_source(X, spec.n_occ, tags), (dec, 0))
    tb.connect(vec_source(np.full((4, spec.n_sym, spec.n_occ), 0.01), spec.n_occ), (dec, 1))
    tb.msg_connect((dec, "pdus"), (pdus, "in"))
    tb.msg_connect((dec, "frames"), (frames, "in"))
    tb.run()
    got = [bytes(pmt.u8vector_elements(pmt.cdr(m))) for m in pdus.drained()]
    assert got == [b"alpha", b"beta"]
    c = dec.stats()
    assert c["frames"] == 4 and c["ok"] == 2 and c["flagged"] == 1
    assert c["header_errors"] + c["crc_errors"] == 1
    reps = [pmt.to_python(m) for m in frames.drained()]
    assert len(reps) == 4 and reps[3]["reason"] == "non-finite input"
