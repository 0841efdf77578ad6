"""Headless links as GNU Radio top blocks, built from the gr-gdm blocks (the same graphs as
grc/examples/gdm_sim_link_*.grc and replay_sigmf.grc), for the CLI and the tests:
- SimLink: ofdm_tx -> channel_sim -> receiver, optionally recording the channel output;
- ReplayLink: a SigMF recording -> receiver.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pmt
from gnuradio import blocks, gr

from ..io.recording import RecordingError
from ..link import LinkConfig, link_fields
from ..ofdm import framing
from .channel_estimator import channel_estimator
from .channel_sim import channel_sim
from .frame_decoder import frame_decoder
from .iq_compensator import iq_compensator
from .link_stats import link_stats
from .mimo_equalizer import mimo_equalizer
from .ofdm_sync_demod import ofdm_sync_demod
from .ofdm_tx import ofdm_tx
from .sigmf_io import sigmf_sink, sigmf_source
from .symbol_denoiser import symbol_denoiser


class _PduLog(gr.basic_block):
    """Keeps the decoded payloads (in order) for bit-exact comparisons."""

    def __init__(self):
        gr.basic_block.__init__(self, "gdm_pdu_log", None, None)
        self.payloads: list[tuple[int, bytes]] = []
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._on)

    def _on(self, msg):
        meta = pmt.to_python(pmt.car(msg))
        self.payloads.append((meta.get("seq"), bytes(pmt.u8vector_elements(pmt.cdr(msg)))))

    def drained(self):
        while self.nmsgs(pmt.intern("in")):
            self._on(self.delete_head_nowait(pmt.intern("in")))
        return self.payloads


class _PduCount(gr.basic_block):
    """Counts decoded payloads without keeping them."""

    def __init__(self):
        gr.basic_block.__init__(self, "gdm_pdu_count", None, None)
        self.count = 0
        self.message_port_register_in(pmt.intern("in"))
        self.set_msg_handler(pmt.intern("in"), self._on)

    def _on(self, msg):
        self.count += 1

    def drained(self):
        while self.nmsgs(pmt.intern("in")):
            self._on(self.delete_head_nowait(pmt.intern("in")))
        return []


def pdu_byte_sink(tb: gr.top_block, src) -> tuple:
    """PDUs from message port ``src`` (block, port) -> tagged byte stream -> vector sink, all
    GNU Radio C++ blocks: the kind of sink the stock receiver's byte stream ends in, without a
    Python handler per message (one costs the receiver ~0.25 ms of GIL time per frame)."""
    from gnuradio import pdu as gr_pdu

    p2s = gr_pdu.pdu_to_tagged_stream(gr.types.byte_t, "packet_len")
    snk = blocks.vector_sink_b()
    tb.msg_connect(src, (p2s, "pdus"))
    tb.connect(p2s, snk)
    return p2s, snk


class _Link(gr.top_block):
    """Receiver chain shared by the links: [iq_compensator] -> sync/demod -> estimator ->
    equalizer -> [symbol_denoiser] -> decoder -> link_stats, fed from ``sources`` [(block,
    port)] one per antenna (the bracketed blocks where the LinkConfig asks for them)."""

    def _receiver(self, p: LinkConfig, sources, keep_payloads: bool = True, score: bool = True,
                  byte_sink: bool = False):
        fec = p.fec or ""
        if p.iq_compensation:
            self.iqc = iq_compensator(p.n_rx)
            for r, src in enumerate(sources):
                self.connect(src, (self.iqc, r))
            sources = [(self.iqc, r) for r in range(p.n_rx)]
        self.sync = ofdm_sync_demod(p.preset, p.n_rx)
        self.est = channel_estimator(p.preset, p.n_rx, p.n_tx, p.estimator, p.profile, p.delay_spread, p.doppler,
                                     options={p.estimator: dict(p.estimator_options or {})})
        self.eq = mimo_equalizer(p.preset, p.n_rx, p.n_tx, p.equalizer)
        self.dec = frame_decoder(p.preset, p.n_tx, p.modulation, fec=fec)
        self.stats = link_stats(p.preset, p.n_tx, p.modulation, fec=fec) if score else None
        self.pdus = None if byte_sink else (_PduLog() if keep_payloads else _PduCount())
        for r, src in enumerate(sources):
            self.connect(src, (self.sync, r))
            self.connect((self.sync, r), (self.est, r))
            self.connect((self.sync, r), (self.eq, r))
        self.connect(self.est, (self.eq, p.n_rx))
        self.dn = None
        if p.denoiser and p.denoiser != "none":
            self.dn = symbol_denoiser(p.preset, p.n_tx, p.modulation, p.denoiser, model=p.denoiser_model)
            for t in range(p.n_tx + 1):
                self.connect((self.eq, t), (self.dn, t))
                self.connect((self.dn, t), (self.dec, t))
        else:
            for t in range(p.n_tx + 1):
                self.connect((self.eq, t), (self.dec, t))
        if score:
            self.msg_connect((self.dec, "frames"), (self.stats, "frames"))
        if byte_sink:
            self.byte_sink = pdu_byte_sink(self, (self.dec, "pdus"))
        else:
            self.msg_connect((self.dec, "pdus"), (self.pdus, "in"))

    def run_and_collect(self) -> dict:
        t0 = time.monotonic()
        self.run()
        wall = time.monotonic() - t0
        s = self.stats.stats()
        p = self.p
        s.update(estimator=p.estimator, antennas=p.antennas, snr_db=p.snr_db, wall_s=wall,
                 sync=self.sync.stats(), decoder=self.dec.stats(), preset=p.preset,
                 denoiser=self.dn.stats() if self.dn is not None else None, iq_compensation=p.iq_compensation,
                 modulation=p.modulation, profile=p.profile, payloads=self.pdus.drained())
        return s


class SimLink(_Link):
    """``insert``: a block with n_rx inputs and outputs placed between the channel and the
    receiver (e.g. faults.sample_gap; its ``gaps`` messages, if it has them, go to link_stats).
    ``keep_payloads=False`` counts decoded payloads instead of keeping them (long runs)."""

    def __init__(self, p: LinkConfig, record: str | None = None, center_freq: float = 0.0, insert=None,
                 keep_payloads: bool = True):
        gr.top_block.__init__(self, "gdm_sim_link")
        self.p = p
        fec = p.fec or ""
        self.tx = ofdm_tx(p.preset, p.n_tx, p.modulation, "random", 0, p.frames, p.gap, p.seed, fec=fec)
        self.ch = channel_sim(p.preset, p.n_tx, p.n_rx, p.profile, p.delay_spread, p.doppler, p.snr_db,
                              p.cfo_hz, p.timing_offset, 0.0, p.seed + 1, **(p.impairments or {}))
        for t in range(p.n_tx):
            self.connect((self.tx, t), (self.ch, t))
        rx_in = [(self.ch, r) for r in range(p.n_rx)]
        if insert is not None:
            for r in range(p.n_rx):
                self.connect((self.ch, r), (insert, r))
            rx_in = [(insert, r) for r in range(p.n_rx)]
        self._receiver(p, rx_in, keep_payloads)
        if insert is not None and "gaps" in (pmt.to_python(insert.message_ports_out()) or []):
            self.msg_connect((insert, "gaps"), (self.stats, "gaps"))
        self.msg_connect((self.tx, "tx"), (self.stats, "tx"))
        self.msg_connect((self.ch, "truth"), (self.stats, "truth"))
        self.msg_connect((self.est, "csi"), (self.stats, "csi"))  # NMSE needs the truth
        if record:
            spec = p.spec()
            self.rec = sigmf_sink(record, p.n_rx, spec.sample_rate, center_freq, p.preset,
                                  hw="gr-gdm channel_sim (simulation)",
                                  description=f"gr-gdm simulated {p.antennas} link, {p.profile}, {p.snr_db:g} dB SNR",
                                  extra={"gdm:link": dataclasses.asdict(p),
                                         "gdm:reference": reference(p)})
            for r in range(p.n_rx):
                self.connect((self.ch, r), (self.rec, r))
            self.msg_connect((self.dec, "frames"), (self.rec, "frames"))


class ReplayLink(_Link):
    """Receiver on a recording. The link parameters come from the recording's ``gdm:link``
    metadata where present (antennas, preset, modulation, FEC), overridden by ``overrides``;
    a ``gdm:reference`` (seeded random payloads) lets PER and BER be scored."""

    def __init__(self, path: str, **overrides):
        gr.top_block.__init__(self, "gdm_replay_link")
        self.src = sigmf_source(path, preset=overrides.get("preset", ""), n_rx=overrides.get("n_rx", 0))
        g = self.src.rec.meta["global"]
        link = g.get("gdm:link") or {}
        if not isinstance(link, dict):
            raise RecordingError(f"{path}: gdm:link must be an object, got {str(link)[:40]}; fix or remove it")
        try:
            base = link_fields(link, f"{path}: gdm:link")
        except ValueError as e:
            raise RecordingError(str(e)) from None
        base.update({k: v for k, v in overrides.items() if v is not None})
        base["n_rx"] = self.src.n_ch
        base.setdefault("snr_db", None)  # unknown for a foreign recording
        if "preset" not in base and self.src.spec is not None:
            base["preset"] = self.src.spec.name
        self.p = LinkConfig(**base)
        self._receiver(self.p, [(self.src, r) for r in range(self.src.n_ch)])
        ref = self.src.rec.reference
        if ref:
            self.stats.set_reference(ref["seed"], ref["n_bytes"], ref["frames"])


def reference(p: LinkConfig) -> dict:
    """How ofdm_tx drew the payloads, so a replay can score them."""
    return {"mode": "random", "seed": p.seed, "frames": p.frames,
            "n_bytes": framing.max_payload_bytes(p.spec().info_bits_per_frame)}


class StockReplayLink(gr.top_block):
    """A recording of GNU Radio's stock digital.ofdm_tx -> gr-gdm's stock_ofdm_rx (all antennas)."""

    def __init__(self, path: str):
        from .stock_ofdm_rx import stock_ofdm_rx

        gr.top_block.__init__(self, "gdm_stock_replay")
        self.src = sigmf_source(path)
        st = self.src.rec.meta["global"].get("gdm:stock", {})
        self.rx = stock_ofdm_rx(self.src.n_ch, st.get("fft_len", 64), st.get("cp_len", 16),
                                st.get("payload_mod", "bpsk"), sample_rate=self.src.rec.sample_rate)
        self.pdus = _PduLog()
        for r in range(self.src.n_ch):
            self.connect((self.src, r), (self.rx, r))
        self.msg_connect((self.rx, "pdus"), (self.pdus, "in"))

    def run_and_collect(self) -> dict:
        t0 = time.monotonic()
        self.run()
        payloads = [p for _, p in self.pdus.drained()]
        return {"receiver": "gr-gdm stock_ofdm_rx", "frames_sent": None, "frames_ok": len(payloads),
                "payloads": payloads, "stats": self.rx.stats(), "wall_s": time.monotonic() - t0}


def stock_ofdm_rx_reference(path: str) -> dict:
    """GNU Radio's own digital.ofdm_rx on antenna 0 of the same recording."""
    from gnuradio import blocks, digital

    src = sigmf_source(path)
    st = src.rec.meta["global"].get("gdm:stock", {})
    tb = gr.top_block()
    rx = digital.ofdm_rx(fft_len=st.get("fft_len", 64), cp_len=st.get("cp_len", 16), packet_length_tag_key="length")
    snk = blocks.vector_sink_b()
    tb.connect((src, 0), rx, snk)
    for r in range(1, src.n_ch):
        tb.connect((src, r), blocks.null_sink(gr.sizeof_gr_complex))
    tb.run()
    data = bytes(np.asarray(snk.data(), np.uint8))
    tags = sorted((t.offset, pmt.to_long(t.value)) for t in snk.tags() if pmt.symbol_to_string(t.key) == "length")
    return {"receiver": "stock digital.ofdm_rx", "frames_ok": len(tags),
            "payloads": [data[o:o + n] for o, n in tags]}
