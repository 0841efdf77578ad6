"""channel_estimator adapt mode: pilots collected while running, adaptation in a background thread,
the model swapped between batches with no frame dropped, the switch tagged on the first frame the
adapted model estimates, and every frame identical to the core estimate of the model in use."""
import time

import numpy as np
import pmt
from gnuradio import blocks, gr

from gnuradio import gdm
from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.blocks._common import to_pmt
from gnuradio.gdm.metrics.evaluate import received_grid
from gnuradio.gdm.sim.grid import ChannelConfig, grid_channels

SPEC = FrameSpec.preset("nr72")


class GatedSource(gr.sync_block):
    """Frames [n, n_sym, fft_len] with gdm_frame tags; after ``first`` frames it waits until
    ``gate()`` is true (the adaptation finished), so frames keep coming after the swap."""

    def __init__(self, frames, nv, first, gate):
        gr.sync_block.__init__(self, "gated_source", None, [(np.complex64, SPEC.fft_len)])
        self.data = frames.reshape(-1, SPEC.fft_len)
        self.nv, self.first, self.gate, self.pos = nv, first * SPEC.n_sym, gate, 0

    def work(self, input_items, output_items):
        out = output_items[0]
        if self.pos >= len(self.data):
            return -1
        stop = len(self.data)
        if self.pos < self.first:
            stop = self.first
        elif self.pos == self.first:
            t0 = time.time()
            while not self.gate():
                if time.time() - t0 > 120:
                    raise RuntimeError("adaptation did not finish")
                time.sleep(0.05)
        n = min(len(out), stop - self.pos)
        out[:n] = self.data[self.pos:self.pos + n]
        for off in range(self.pos, self.pos + n):
            if off % SPEC.n_sym == 0:
                self.add_item_tag(0, self.nitems_written(0) + off - self.pos, pmt.intern("gdm_frame"),
                                  to_pmt({"index": off // SPEC.n_sym, "noise_var": self.nv}))
        self.pos += n
        return n


def test_adapt_mode_swaps_between_frames_and_tags_the_switch(tmp_path):
    B, first, nv = 30, 20, 0.01
    rng = np.random.default_rng(5)
    H = grid_channels(SPEC, ChannelConfig("TDL-C", 2000e-9, 0.0), B, rng=rng)  # outside the trained mix
    Y = received_grid(H, SPEC, 20, rng)
    full = np.zeros((B, 1, SPEC.n_sym, SPEC.fft_len), np.complex64)
    full[..., SPEC.occupied_bins] = Y
    est = gdm.channel_estimator("nr72", 1, 1, "diffusion", device="cpu", adapt=True, adapt_frames=first,
                                adapt_out=str(tmp_path / "site.onnx"))
    src = GatedSource(full[:, 0], nv, first, lambda: est.stats()["adapt"]["state"] not in ("collecting", "adapting"))
    snk = blocks.vector_sink_c(SPEC.fft_len)
    tb = gr.top_block()
    tb.connect(src, est, snk)
    tb.run()

    status = est.stats()["adapt"]
    assert status["state"] == "switched", status
    assert status["frames_adapt"] + status["frames_heldout"] == first and status["guard"]["accepted"]
    out = np.asarray(snk.data()).reshape(-1, SPEC.n_sym, SPEC.fft_len)[..., SPEC.occupied_bins]
    assert out.shape[0] == B  # nothing dropped
    switches = [t for t in snk.tags() if pmt.symbol_to_string(t.key) == "gdm_model_switch"]
    assert len(switches) == 1 and switches[0].offset == first * SPEC.n_sym
    info = pmt.to_python(switches[0].value)
    assert info["model"] == str(tmp_path / "site.onnx") and info["frames"] == first
    shipped = estimation.make("diffusion", SPEC, 1, device="cpu").estimate(Y, nv)[:, 0, 0]
    adapted = estimation.make("diffusion", SPEC, 1, device="cpu", model=tmp_path / "site.onnx").estimate(Y, nv)[:, 0, 0]
    np.testing.assert_allclose(out[:first], shipped[:first], atol=1e-4)
    np.testing.assert_allclose(out[first:], adapted[first:], atol=1e-4)

    def nmse(a):
        return 10 * np.log10(np.sum(np.abs(a - H[first:, 0, 0]) ** 2) / np.sum(np.abs(H[first:, 0, 0]) ** 2))

    assert nmse(out[first:]) < nmse(shipped[first:]) - 2  # the adapted model is better on the later frames


def test_adapt_off_by_default_and_restartable():
    est = gdm.channel_estimator("nr72", 1, 1, "diffusion", device="cpu")
    assert "adapt" not in est.stats()
    est.set_adapt(True)
    assert est.stats()["adapt"]["state"] == "collecting"
    est.set_adapt(False)
    assert est.stats()["adapt"]["state"] == "idle"
