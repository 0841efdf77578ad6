"""LinkScorer: matches transmitted frames, channel truth, channel estimates and decoder reports
of a live link and accumulates PER, BER (information bits after FEC, and raw channel bits before it), EVM and NMSE. Pure Python; the link_stats block and the
numpy link share it. Memory is bounded: unmatched entries older than ``window`` frames are
evicted and counted."""
from __future__ import annotations

import bisect
import collections

import numpy as np

from ..frame import FrameSpec
from ..ofdm import framing
from ..ofdm.transceiver import encode_bits
from ..sim.channel import align_truth


class _Bounded(collections.OrderedDict):
    def __init__(self, limit, keep_evicted: int = 0):
        super().__init__()
        self.limit, self.evicted = limit, 0
        self.evicted_keys: collections.deque = collections.deque(maxlen=keep_evicted)

    def put(self, k, v):
        self[k] = v
        while len(self) > self.limit:
            k, _ = self.popitem(last=False)
            self.evicted += 1
            self.evicted_keys.append(k)


class LinkScorer:
    def __init__(self, spec: FrameSpec, window: int = 4096, lag: int = 64):
        self.spec, self.lag = spec, lag
        self._pending: collections.deque = collections.deque()  # reports waiting for csi/truth
        self.tx = _Bounded(window, keep_evicted=65536)  # evicted = sent, never reported
        self._last_tx: int | None = None
        self.truth = _Bounded(window)  # seq -> (arrival, cfo, H)
        # seq -> the frame's mean channel power (dB re the average): says whether a frame that
        # was never detected sat in a deep fade. Dropped once the frame is reported, so it holds
        # only frames still in flight or never detected, not every frame of a long run.
        self.gain_db = _Bounded(65536)
        self.arrivals = _Bounded(window)  # arrival -> seq
        self.csi = _Bounded(window)
        self.sent = 0
        self.detected = self.ok = self.header_errors = self.crc_errors = self.flagged = 0
        self.unmatched = 0  # decoded frames we could not attribute to a transmitted frame
        self.bit_errors = self.bits = 0  # information bits after FEC
        self.raw_bit_errors = self.raw_bits = 0  # channel bits, hard decisions before FEC
        self.err_pow = self.h_pow = 0.0
        self.nmse_frames = 0
        self._evm_sum, self._evm_n = 0.0, 0  # running mean: a link may run for days
        self._ref = None  # (payload(seq) function, frames, bitmap of frames already scored)
        # Without the transmitter's messages (another process, a recording), loss is what the
        # sequence numbers of good frames skip; a jump backwards is a transmitter restart.
        self._last_seq: int | None = None
        self.seq_gaps = self.tx_restarts = 0
        # Samples a source dropped (sample_gap messages, a radio's overflow): receiver offsets
        # after a gap are earlier than the transmitter's by the samples dropped before them.
        self._gap_at: list[int] = []  # receiver sample offsets where gaps are, ascending
        self._gap_cum: list[int] = []  # samples dropped up to and including each
        self._gap_base = 0  # dropped before the oldest kept gap
        self.gaps = self.samples_dropped = 0

    def add_tx(self, seq: int, payload: bytes):
        self.sent += 1
        self.tx.put(int(seq), bytes(payload))
        self._last_tx = int(seq)

    def add_gap(self, at: int, dropped: int):
        """A source dropped ``dropped`` samples just before receiver sample ``at``."""
        self.gaps += 1
        self.samples_dropped += int(dropped)
        self._gap_at.append(int(at))
        self._gap_cum.append((self._gap_cum[-1] if self._gap_cum else self._gap_base) + int(dropped))
        if len(self._gap_at) > 1024:
            self._gap_base = self._gap_cum.pop(0)
            self._gap_at.pop(0)

    def _tx_offset(self, off: int) -> int:
        """Receiver sample offset -> the transmitter's (channel output) offset."""
        i = bisect.bisect_right(self._gap_at, off)
        return off + (self._gap_cum[i - 1] if i else self._gap_base)

    def _straddles_gap(self, off) -> bool:
        """Whether a frame starting at receiver sample ``off`` has a gap inside it."""
        if off is None:
            return False
        i = bisect.bisect_right(self._gap_at, off)
        return i < len(self._gap_at) and self._gap_at[i] < off + self.spec.frame_len

    def _full_seq(self, seq16: int) -> int:
        """A header's 16-bit sequence number -> the transmitter's recent sequence number."""
        if self._last_tx is None:
            return int(seq16)
        d = (int(seq16) - self._last_tx) % 65536  # the nearest one, either side of the last sent
        return self._last_tx + d if d < 32768 else self._last_tx + d - 65536

    def set_reference(self, payload, frames: int):
        """Frames 0..frames-1 were sent with payloads ``payload(seq)`` (a seeded generator, e.g.
        a recording's gdm:reference), generated when each frame is scored rather than held."""
        self.sent += int(frames)
        self._ref = (payload, int(frames), bytearray((int(frames) + 7) // 8))

    def _ref_payload(self, seq: int):
        """Payload of the first not yet scored reference frame whose 16-bit sequence number is
        ``seq`` (headers carry seq mod 65536), or None."""
        if self._ref is None or seq is None:
            return None
        fn, frames, used = self._ref
        for s in range(int(seq) & 0xFFFF, frames, 65536):
            if not used[s >> 3] & (1 << (s & 7)):
                used[s >> 3] |= 1 << (s & 7)
                return s, fn(s)
        return None

    def add_truth(self, seq: int, arrival: int, cfo_hz: float, H: np.ndarray):
        self.truth.put(int(seq), (int(arrival), float(cfo_hz), np.asarray(H)))
        self.gain_db.put(int(seq), float(10 * np.log10(max(float(np.mean(np.abs(H) ** 2)), 1e-30))))
        self.arrivals.put(int(arrival), int(seq))

    def add_csi(self, index: int, H: np.ndarray):
        self.csi.put(int(index), np.asarray(H))

    def _match(self, rep: dict) -> tuple[int | None, bool]:
        """(transmitted seq of a report, matched by its arrival time). The arrival (corrected for
        dropped samples) decides unless a good header names another frame."""
        hdr = self._full_seq(rep["seq"]) if rep.get("header_ok") and rep.get("seq") is not None else None
        off = rep.get("sample_offset")
        if off is not None and self.arrivals:
            off = self._tx_offset(off)
            for arr in (off + d for d in sorted(range(-self.spec.cp_len, self.spec.cp_len + 1), key=abs)):
                if arr in self.arrivals:
                    seq = self.arrivals[arr]
                    if hdr is None or (seq - hdr) % 65536 == 0:
                        return seq, True
                    break
        return hdr, False

    def add_rx(self, rep: dict):
        """Decoder report of one frame. Scoring waits ``lag`` frames so that the matching
        truth and estimate messages, which travel separately, have arrived."""
        self._pending.append(rep)
        self._settle(self.lag)

    def _settle(self, keep: int):
        while len(self._pending) > keep:
            self._score(self._pending.popleft())

    def _score(self, rep: dict):
        self.detected += 1
        if rep.get("reason") == "non-finite input":
            self.flagged += 1
        self.ok += bool(rep.get("crc_ok"))
        if rep.get("header_ok") is False and rep.get("reason") != "non-finite input":
            self.header_errors += 1
        elif rep.get("header_ok") and not rep.get("crc_ok"):
            self.crc_errors += 1
        if rep.get("evm_db") is not None:
            self._evm_sum += 10 ** (rep["evm_db"] / 10)
            self._evm_n += 1
        if rep.get("crc_ok"):
            self._track_seq(int(rep["seq"]))
        seq, by_arrival = self._match(rep)
        if seq is not None:
            self.gain_db.pop(seq, None)
        if seq is not None and seq in self.tx:
            payload = self.tx.pop(seq)
        else:
            found = self._ref_payload(seq)
            if found is None:
                self.unmatched += 1
                return
            seq, payload = found
        if rep.get("bits") is not None:
            ref = framing.pack_frame(payload, seq, self.spec.info_bits_per_frame)
            got = np.unpackbits(np.asarray(rep["bits"], np.uint8))[: ref.size]
            self.bit_errors += int(np.count_nonzero(got != ref))
            self.bits += ref.size
        if rep.get("raw_bits") is not None:
            ref = encode_bits(framing.pack_frame(payload, seq, self.spec.info_bits_per_frame), self.spec)
            got = np.unpackbits(np.asarray(rep["raw_bits"], np.uint8))[: ref.size]
            self.raw_bit_errors += int(np.count_nonzero(got != ref))
            self.raw_bits += ref.size
        idx = rep.get("index")
        if by_arrival and seq in self.truth and idx in self.csi and not self._straddles_gap(rep.get("sample_offset")):
            arrival, cfo, H = self.truth.pop(seq)
            self.arrivals.pop(arrival, None)
            Hs = align_truth(H, self.spec, self._tx_offset(rep["sample_offset"]) - arrival, cfo, rep.get("cfo_hz") or 0.0)
            Hh = self.csi.pop(idx)
            self.err_pow += float(np.sum(np.abs(Hh - Hs) ** 2))
            self.h_pow += float(np.sum(np.abs(Hs) ** 2))
            self.nmse_frames += 1

    def _track_seq(self, seq: int):
        if self._last_seq is not None:
            step = (seq - self._last_seq) % 65536
            if 0 < step < 4096:
                self.seq_gaps += step - 1
            elif step != 0:
                self.tx_restarts += 1
        self._last_seq = seq

    def missed_seqs(self) -> list[int]:
        """Transmitted frames no report was ever matched to (the last 65536 evicted, and those
        still waiting: call after the link has stopped and everything is drained)."""
        self._settle(0)
        return [*self.tx.evicted_keys, *self.tx.keys()]

    def missed_gain_db(self) -> dict[int, float | None]:
        """Channel power (dB re the average) of every never-detected frame, None where the
        truth did not arrive or has left the window."""
        return {q: self.gain_db.get(q) for q in self.missed_seqs()}

    def summary(self) -> dict:
        self._settle(0)
        sent = self.sent or None
        db = (lambda x: float(10 * np.log10(x)) if x and x > 0 else None)
        return {
            "frames_sent": sent,
            "frames_detected": self.detected,
            "frames_ok": self.ok,
            "frames_lost": (self.sent - self.ok) if sent else self.seq_gaps,
            "frames_lost_by_seq": self.seq_gaps,
            "tx_restarts": self.tx_restarts,
            "per": (1 - self.ok / self.sent) if sent else None,
            "header_errors": self.header_errors,
            "crc_errors": self.crc_errors,
            "flagged": self.flagged,
            "unmatched": self.unmatched,
            "ber": self.bit_errors / self.bits if self.bits else None,
            "bits": self.bits,
            "raw_ber": self.raw_bit_errors / self.raw_bits if self.raw_bits else None,
            "evm_db": db(self._evm_sum / self._evm_n) if self._evm_n else None,
            "nmse_db": db(self.err_pow / self.h_pow) if self.h_pow else None,
            "nmse_frames": self.nmse_frames,
            # transmitted frames / truths / estimates dropped unmatched from the bounded windows
            "evicted": self.tx.evicted + self.truth.evicted + self.csi.evicted,
            # sent frames no decoder report ever matched (never detected), so far
            "frames_missed": self.tx.evicted,
            "gaps": self.gaps,
            "samples_dropped": self.samples_dropped,
        }
