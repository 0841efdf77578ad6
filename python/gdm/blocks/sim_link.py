"""The simulated headless link as a GNU Radio top block, built from the gr-gdm blocks (the same
graph as grc/examples/gdm_sim_link_*.grc), for the CLI and the tests."""
from __future__ import annotations

import time

from gnuradio import gr

from ..link import LinkConfig
from .channel_estimator import channel_estimator
from .channel_sim import channel_sim
from .frame_decoder import frame_decoder
from .link_stats import link_stats
from .mimo_equalizer import mimo_equalizer
from .ofdm_sync_demod import ofdm_sync_demod
from .ofdm_tx import ofdm_tx


class SimLink(gr.top_block):
    def __init__(self, p: LinkConfig):
        gr.top_block.__init__(self, "gdm_sim_link")
        self.p = p
        fec = p.fec or ""
        self.tx = ofdm_tx(p.preset, p.n_tx, p.modulation, "random", 0, p.frames, p.gap, p.seed, fec=fec)
        self.ch = channel_sim(p.preset, p.n_tx, p.n_rx, p.profile, p.delay_spread, p.doppler, p.snr_db,
                              p.cfo_hz, p.timing_offset, 0.0, p.seed + 1)
        self.sync = ofdm_sync_demod(p.preset, p.n_rx)
        self.est = channel_estimator(p.preset, p.n_rx, p.n_tx, p.estimator, p.profile, p.delay_spread, p.doppler)
        self.eq = mimo_equalizer(p.preset, p.n_rx, p.n_tx, p.equalizer)
        self.dec = frame_decoder(p.preset, p.n_tx, p.modulation, fec=fec)
        self.stats = link_stats(p.preset, p.n_tx, p.modulation, fec=fec)
        for t in range(p.n_tx):
            self.connect((self.tx, t), (self.ch, t))
        for r in range(p.n_rx):
            self.connect((self.ch, r), (self.sync, r))
            self.connect((self.sync, r), (self.est, r))
            self.connect((self.sync, r), (self.eq, r))
        self.connect(self.est, (self.eq, p.n_rx))
        for t in range(p.n_tx + 1):
            self.connect((self.eq, t), (self.dec, t))
        self.msg_connect((self.tx, "tx"), (self.stats, "tx"))
        self.msg_connect((self.ch, "truth"), (self.stats, "truth"))
        self.msg_connect((self.est, "csi"), (self.stats, "csi"))
        self.msg_connect((self.dec, "frames"), (self.stats, "frames"))

    def run_and_collect(self) -> dict:
        t0 = time.monotonic()
        self.run()
        wall = time.monotonic() - t0
        s = self.stats.stats()
        p = self.p
        s.update(estimator=p.estimator, antennas=p.antennas, snr_db=p.snr_db, wall_s=wall,
                 sync=self.sync.stats(), decoder=self.dec.stats(), preset=p.preset,
                 modulation=p.modulation, profile=p.profile)
        return s
