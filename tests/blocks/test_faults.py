"""Fault-injection blocks: sample_gap drops exactly what it says and announces it (tag, message,
frames hit); stall sinks block and then take everything; FaultyCall raises / returns NaN on
schedule."""
import time

import numpy as np
import pmt
import pytest
from gnuradio import blocks, gr

from blockutil import tag, vec_source
from gnuradio.gdm.blocks.faults import FaultyCall, pdu_stall_sink, sample_gap, stall_sink

FL = 2160  # nr72 frame length


def test_sample_gap_drops_announces_and_lists_the_frames_it_hit(collector):
    n = 10 * FL
    x = (np.arange(n) + 1j * np.arange(n)).astype(np.complex64)
    frames = [tag(i * FL, "gdm_tx_frame", {"seq": i, "n_bytes": 10}) for i in range(10)]
    tb = gr.top_block()
    src0, src1 = vec_source(x, 1, frames), vec_source(-x, 1)
    g = sample_gap(2, "nr72", period=3 * FL + 100, length=500)
    snk0, snk1 = blocks.vector_sink_c(), blocks.vector_sink_c()
    msgs = collector()
    tb.connect(src0, (g, 0), snk0)
    tb.connect(src1, (g, 1), snk1)
    tb.msg_connect((g, "gaps"), (msgs, "in"))
    tb.run()
    starts = [3 * FL + 100, 6 * FL + 200, 9 * FL + 300]
    keep = np.ones(n, bool)
    for s in starts:
        keep[s:s + 500] = False
    np.testing.assert_array_equal(np.asarray(snk0.data()), x[keep])
    np.testing.assert_array_equal(np.asarray(snk1.data()), -x[keep])
    got = [pmt.to_python(m) for m in msgs.drained()]
    assert [(m["at_in"], m["dropped"]) for m in got] == [(s, 500) for s in starts]
    assert [m["at"] for m in got] == [s - 500 * i for i, s in enumerate(starts)]
    gap_tags = [t.offset for t in snk0.tags() if pmt.symbol_to_string(t.key) == "gdm_gap"]
    assert gap_tags == [m["at"] for m in got]
    assert g.stats() == {"gaps": 3, "samples_dropped": 1500, "frames_hit": len(g.hit_seqs)}
    assert {3, 6, 9} <= set(g.hit_seqs) and 0 not in g.hit_seqs  # the frames the gaps cut
    with pytest.raises(ValueError, match="length"):
        sample_gap(2, "nr72", period=100, length=100)


def test_stall_sinks_block_then_take_everything(collector):
    tb = gr.top_block()
    src = blocks.vector_source_c(np.zeros(20000, np.complex64).tolist(), False)
    sink = stall_sink(np.complex64, 1, after=5000, seconds=0.3)
    tb.connect(src, sink)
    t0 = time.monotonic()
    tb.run()
    assert time.monotonic() - t0 >= 0.3 and sink.items == 20000 and sink.stalled_s >= 0.3
    p = pdu_stall_sink(after=2, seconds=0.2)
    for _ in range(5):
        p._on(pmt.PMT_NIL)
    assert p.received == 5 and p.stalled_s >= 0.2


def test_faulty_call_schedule():
    f = FaultyCall(lambda **kw: np.ones((3, 2)), raise_every=3, nan_every=2)
    outs = []
    for _ in range(6):
        try:
            outs.append(f(x=1))
        except RuntimeError as e:
            outs.append(str(e))
    assert "injected fault" in outs[2] and "injected fault" in outs[5]
    assert np.isnan(outs[1][0]).all() and np.isfinite(outs[1][1:]).all() and np.isfinite(outs[0]).all()
    assert (f.calls, f.raised, f.nans) == (6, 2, 2)
