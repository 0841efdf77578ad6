"""Headless links as GNU Radio top blocks, built from the gr-gdm blocks (the same graphs as
grc/examples/gdm_sim_link_*.grc and replay_sigmf.grc), for the CLI and the tests:
- SimLink: ofdm_tx -> channel_sim -> receiver, optionally recording the channel output;
- ReplayLink: a SigMF recording -> receiver.
"""
from __future__ import annotations

import dataclasses
import time

import pmt
from gnuradio import gr

from ..link import LinkConfig
from ..ofdm import framing
from .channel_estimator import channel_estimator
from .channel_sim import channel_sim
from .frame_decoder import frame_decoder
from .link_stats import link_stats
from .mimo_equalizer import mimo_equalizer
from .ofdm_sync_demod import ofdm_sync_demod
from .ofdm_tx import ofdm_tx
from .sigmf_io import sigmf_sink, sigmf_source


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


class _Link(gr.top_block):
    """Receiver chain shared by the links: sync/demod -> estimator -> equalizer -> decoder ->
    link_stats, fed from ``sources`` [(block, port)] one per antenna."""

    def _receiver(self, p: LinkConfig, sources):
        fec = p.fec or ""
        self.sync = ofdm_sync_demod(p.preset, p.n_rx)
        self.est = channel_estimator(p.preset, p.n_rx, p.n_tx, p.estimator, p.profile, p.delay_spread, p.doppler)
        self.eq = mimo_equalizer(p.preset, p.n_rx, p.n_tx, p.equalizer)
        self.dec = frame_decoder(p.preset, p.n_tx, p.modulation, fec=fec)
        self.stats = link_stats(p.preset, p.n_tx, p.modulation, fec=fec)
        self.pdus = _PduLog()
        for r, src in enumerate(sources):
            self.connect(src, (self.sync, r))
            self.connect((self.sync, r), (self.est, r))
            self.connect((self.sync, r), (self.eq, r))
        self.connect(self.est, (self.eq, p.n_rx))
        for t in range(p.n_tx + 1):
            self.connect((self.eq, t), (self.dec, t))
        self.msg_connect((self.est, "csi"), (self.stats, "csi"))
        self.msg_connect((self.dec, "frames"), (self.stats, "frames"))
        self.msg_connect((self.dec, "pdus"), (self.pdus, "in"))

    def run_and_collect(self) -> dict:
        t0 = time.monotonic()
        self.run()
        wall = time.monotonic() - t0
        s = self.stats.stats()
        p = self.p
        s.update(estimator=p.estimator, antennas=p.antennas, snr_db=p.snr_db, wall_s=wall,
                 sync=self.sync.stats(), decoder=self.dec.stats(), preset=p.preset,
                 modulation=p.modulation, profile=p.profile, payloads=self.pdus.drained())
        return s


class SimLink(_Link):
    def __init__(self, p: LinkConfig, record: str | None = None, center_freq: float = 0.0):
        gr.top_block.__init__(self, "gdm_sim_link")
        self.p = p
        fec = p.fec or ""
        self.tx = ofdm_tx(p.preset, p.n_tx, p.modulation, "random", 0, p.frames, p.gap, p.seed, fec=fec)
        self.ch = channel_sim(p.preset, p.n_tx, p.n_rx, p.profile, p.delay_spread, p.doppler, p.snr_db,
                              p.cfo_hz, p.timing_offset, 0.0, p.seed + 1)
        for t in range(p.n_tx):
            self.connect((self.tx, t), (self.ch, t))
        self._receiver(p, [(self.ch, r) for r in range(p.n_rx)])
        self.msg_connect((self.tx, "tx"), (self.stats, "tx"))
        self.msg_connect((self.ch, "truth"), (self.stats, "truth"))
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
        known = {f.name for f in dataclasses.fields(LinkConfig)}
        base = {k: v for k, v in (g.get("gdm:link") or {}).items() if k in known}
        base.update({k: v for k, v in overrides.items() if v is not None})
        base["n_rx"] = self.src.n_ch
        base.setdefault("snr_db", None)  # unknown for a foreign recording
        if "preset" not in base and self.src.spec is not None:
            base["preset"] = self.src.spec.name
        self.p = LinkConfig(**base)
        self._receiver(self.p, [(self.src, r) for r in range(self.src.n_ch)])
        ref = g.get("gdm:reference")
        if ref:
            self.stats.set_reference(ref["seed"], ref["n_bytes"], ref["frames"])


def reference(p: LinkConfig) -> dict:
    """How ofdm_tx drew the payloads, so a replay can score them."""
    return {"mode": "random", "seed": p.seed, "frames": p.frames,
            "n_bytes": framing.max_payload_bytes(p.spec().info_bits_per_frame)}
