"""Receiver for GNU Radio's stock ``digital.ofdm_tx`` waveform (pure numpy, no GNU Radio import).

Interoperability with a transmitter gr-gdm did not write. The stock frame (gr-digital 3.10,
``ofdm_txrx.py`` defaults) is, per burst and without gaps between back-to-back bursts::

    [sync word 1 | sync word 2 | header symbol | payload symbols ...]   each with a cyclic prefix

* 64-point FFT, 16-sample CP, 48 data carriers (+-1..26 minus the pilots and DC) and 4 pilots
  at -21, -7, 7, 21 carrying ``s_j * (1, 1, 1, -1)`` on OFDM symbol j (j = 0 is the header;
  ``s`` is the 127-long scramble sequence of ofdm_txrx); the unused carriers of the last
  symbol are zero. Carriers are filled in the order of the occupied-carrier list. The inverse
  FFT is unnormalised (the amplitude is irrelevant to this receiver).
* sync word 1: BPSK +-sqrt(2) on the odd active carriers only, so its two time halves are of
  opposite sign (Schmidl-Cox with a sign flip); sync word 2: BPSK +-1 on every active carrier.
  Both are drawn from ``numpy.random.seed(42)`` exactly as ofdm_txrx does, and rebuilt here so.
* header (packet_header_ofdm / packet_header_default): 48 BPSK bits on the header symbol,
  LSB first: 12-bit packet length in bytes (CRC-32 included), 12-bit header number, CRC-8
  (poly 0x07, init 0xFF, over the little-endian 16-bit length and number), zero padding;
  XORed with an LFSR mask (0x8a, seed 0x6f, 7) when scrambling is on.
* payload: the bytes with their CRC-32 (zlib's, appended little-endian), additively scrambled
  (LFSR 0x8a, seed 0x7f, 7, reset per packet) when scrambling is on, split LSB first into
  ``bps`` bits per symbol and mapped index -> ``constellation_{bpsk,qpsk,8psk}().points()``
  (chunks_to_symbols: no differential or Gray pre-coding is applied; QPSK points have |x| = 2).
``modulate`` is a numpy replica of the transmitter (sample-exact against ofdm_tx, see the tests).

The receiver works chunk by chunk on [n_rx, N] streams with bursts back to back or separated by
gaps; after a burst whose CRC checks, the search resumes at its end, so a burst that follows
immediately is found (stock ofdm_rx drops a few percent of those):
1. detection: Schmidl-Cox metric summed over antennas crossing ``threshold``, with a plateau
   check; a metric that stays high far longer than a preamble (tone, DC) is skipped;
2. CFO (+-1 subcarrier range) from the metric, then from sync word 1's CP and halves at the
   exact timing; noise variance per antenna from the halves' difference;
3. timing: correlation with the known preamble after CFO removal, combined over antennas; the
   earliest arrival within ``first_path_db`` of the peak; a weak correlation rejects the
   detection. FFT windows start ``backoff`` samples early in the CP (phase ramp removed);
4. channel per antenna from both sync words and, once its CRC-8 checks, the header symbol as a
   third training symbol: LMMSE in the delay domain over a tap window chosen per burst by an
   AIC test (a few taps for a flat channel, up to [-pre_taps, cp_len], or per carrier for a
   channel longer than the CP);
5. MRC over antennas; common phase from the 4 pilots per symbol: a residual-CFO slope over the
   burst plus a slow drift smoothed over +-``track`` symbols;
6. header CRC-8, payload length from the header, hard decisions, descrambling, CRC-32.
Non-finite input is zeroed; a burst touching it is counted and dropped. The stream is preceded
by one symbol of zeros, so a first burst with a few samples cut off is still received (its
sample_offset is then slightly negative).
"""
from __future__ import annotations

import zlib

import numpy as np

DEF_OCCUPIED = (tuple(range(-26, -21)) + tuple(range(-20, -7)) + tuple(range(-6, 0))
                + tuple(range(1, 7)) + tuple(range(8, 21)) + tuple(range(22, 27)),)
DEF_PILOT_CARRIERS = ((-21, -7, 7, 21),)
PILOT_SCRAMBLE_SEQ = (
    1, 1, 1, 1, -1, -1, -1, 1, -1, -1, -1, -1, 1, 1, -1, 1, -1, -1, 1, 1, -1, 1, 1, -1, 1, 1, 1,
    1, 1, 1, -1, 1, 1, 1, -1, 1, 1, -1, -1, 1, 1, 1, -1, 1, -1, -1, -1, 1, -1, 1, -1, -1, 1, -1,
    -1, 1, 1, 1, 1, 1, -1, -1, 1, 1, -1, -1, 1, -1, 1, -1, 1, 1, -1, -1, -1, 1, 1, -1, -1, -1, -1,
    1, -1, -1, 1, -1, 1, 1, 1, 1, -1, 1, -1, 1, -1, 1, -1, -1, -1, -1, -1, 1, -1, 1, 1, -1, 1, -1,
    1, 1, 1, -1, -1, 1, -1, -1, -1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1)
DEF_PILOT_SYMBOLS = tuple((x, x, x, -x) for x in PILOT_SCRAMBLE_SEQ)
_SEQ_SEED = 42
_S2 = np.sqrt(2.0)
# digital.constellation_*().points(), indexed by the LSB-first bit chunk.
CONSTELLATIONS = {
    "bpsk": np.array([-1, 1], complex),
    "qpsk": np.array([-1 - 1j, 1 - 1j, -1 + 1j, 1 + 1j]) * _S2,  # |point| = 2, as in gr-digital
    "8psk": np.exp(1j * np.array([np.pi / 8, 7 * np.pi / 8, -np.pi / 8, -7 * np.pi / 8,
                                  3 * np.pi / 8, 5 * np.pi / 8, -3 * np.pi / 8, -5 * np.pi / 8])),
}
BITS_PER_SYMBOL = {"bpsk": 1, "qpsk": 2, "8psk": 3}
HEADER_BITS = 32  # length 12 + number 12 + CRC-8 8; the rest of the header symbol is padding


# ---- format helpers (shared by the numpy transmitter used in tests) -------------------------
def _active(fft_len, occupied, pilots):
    return [c % fft_len for c in list(occupied[0]) + list(pilots[0])]


def sync_word1(fft_len=64, occupied=DEF_OCCUPIED, pilots=DEF_PILOT_CARRIERS) -> np.ndarray:
    """ofdm_txrx._make_sync_word1, fft-shifted."""
    act, rng = set(_active(fft_len, occupied, pilots)), np.random.RandomState(_SEQ_SEED)
    sw = [(_S2, -_S2)[rng.randint(2)] if (x in act and x % 2) else 0 for x in range(fft_len)]
    return np.fft.fftshift(np.asarray(sw, complex))


def sync_word2(fft_len=64, occupied=DEF_OCCUPIED, pilots=DEF_PILOT_CARRIERS) -> np.ndarray:
    """ofdm_txrx._make_sync_word2, fft-shifted."""
    act, rng = set(_active(fft_len, occupied, pilots)), np.random.RandomState(_SEQ_SEED)
    sw = np.asarray([(1, -1)[rng.randint(2)] if x in act else 0 for x in range(fft_len)], complex)
    sw[0] = 0
    return np.fft.fftshift(sw)


def lfsr_bits(mask: int, seed: int, reg_len: int, n: int) -> np.ndarray:
    """gr::digital::lfsr::next_bit() x n (Fibonacci, output = register LSB)."""
    reg, out = seed, np.empty(n, np.uint8)
    for i in range(n):
        out[i] = reg & 1
        newbit = bin(reg & mask).count("1") & 1
        reg = (reg >> 1) | (newbit << reg_len)
    return out


def crc8(data: bytes) -> int:
    """gr::digital::crc(8, 0x07, 0xFF, 0x00, false, false) as packet_header_default uses it."""
    c = 0xFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def header_bits(length: int, number: int, n_bits: int = 48) -> np.ndarray:
    """packet_header_default::header_formatter with one bit per header symbol."""
    length, number = length & 0xFFF, number & 0xFFF
    crc = crc8(bytes([length & 0xFF, length >> 8, number & 0xFF, number >> 8]))
    v = length | number << 12 | crc << 24
    bits = np.zeros(n_bits, np.uint8)
    bits[:HEADER_BITS] = (v >> np.arange(HEADER_BITS)) & 1
    return bits


def parse_header(bits: np.ndarray) -> tuple[int, int] | None:
    """48 (descrambled) header bits -> (packet length in bytes incl. CRC-32, header number),
    or None when the CRC-8 fails."""
    v = int(np.asarray(bits[:HEADER_BITS], np.int64) @ (1 << np.arange(HEADER_BITS, dtype=np.int64)))
    length, number, crc = v & 0xFFF, (v >> 12) & 0xFFF, (v >> 24) & 0xFF
    if crc != crc8(bytes([length & 0xFF, length >> 8, number & 0xFF, number >> 8])):
        return None
    return length, number


def bytes_to_chunks(data: bytes, bps: int) -> np.ndarray:
    """repack_bits_bb(8, bps), LSB first, last chunk zero-padded."""
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
    bits = np.concatenate([bits, np.zeros(-bits.size % bps, np.uint8)]).reshape(-1, bps)
    return bits @ (1 << np.arange(bps))


def chunks_to_bytes(idx: np.ndarray, bps: int, n_bytes: int) -> bytes:
    bits = ((np.asarray(idx)[:, None] >> np.arange(bps)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bits[:n_bytes * 8], bitorder="little").tobytes()


class StockFormat:
    """Everything both ends of the stock link agree on (single carrier-allocation set)."""

    def __init__(self, fft_len=64, cp_len=16, payload_mod="bpsk", scramble_bits=False,
                 occupied_carriers=DEF_OCCUPIED, pilot_carriers=DEF_PILOT_CARRIERS,
                 pilot_symbols=DEF_PILOT_SYMBOLS):
        if payload_mod not in CONSTELLATIONS:
            raise ValueError(f"payload_mod must be one of {', '.join(CONSTELLATIONS)}, got {payload_mod!r}")
        if len(occupied_carriers) != 1 or len(pilot_carriers) != 1:
            raise ValueError("only one occupied/pilot carrier set (the stock default layout) is supported")
        fft_len, cp_len = int(fft_len), int(cp_len)
        if fft_len < 8 or fft_len % 2 or not 0 <= cp_len < fft_len:
            raise ValueError(f"need an even fft_len >= 8 and 0 <= cp_len < fft_len, got {fft_len}, {cp_len}")
        occ, pil = [int(c) for c in occupied_carriers[0]], [int(c) for c in pilot_carriers[0]]
        if (any(not -fft_len // 2 <= c < fft_len // 2 for c in occ + pil) or len(set(occ + pil)) != len(occ + pil)
                or 0 in occ + pil):
            raise ValueError("carriers must be distinct, within the FFT and not DC (sync word 2 is zero there)")
        self.fft_len, self.cp_len, self.sym_len = fft_len, cp_len, fft_len + cp_len
        self.payload_mod, self.bps = payload_mod, BITS_PER_SYMBOL[payload_mod]
        self.points = CONSTELLATIONS[payload_mod]
        self.scramble_bits = bool(scramble_bits)
        h = fft_len // 2
        self.data_bins = np.asarray(occ) + h  # fft-shifted indices, in fill order
        self.pilot_bins = np.asarray(pil) + h
        self.pilot_symbols = np.asarray(pilot_symbols, complex)
        if self.pilot_symbols.ndim != 2 or self.pilot_symbols.shape[1] != len(pil):
            raise ValueError("pilot_symbols must be a sequence of tuples, one value per pilot carrier")
        self.sw1 = sync_word1(fft_len, occupied_carriers, pilot_carriers)
        self.sw2 = sync_word2(fft_len, occupied_carriers, pilot_carriers)
        self.active_bins = np.flatnonzero(self.sw2)  # every carrier that ever carries energy
        self.sw1_bins = np.flatnonzero(self.sw1)
        self.n_data = len(occ)
        self.header_len = self.n_data  # one header symbol, one bit per carrier
        if self.header_len < HEADER_BITS:
            raise ValueError(f"the header symbol needs >= {HEADER_BITS} data carriers")
        self._scramble = None
        self.header_mask = (lfsr_bits(0x8a, 0x6f, 7, self.header_len) if self.scramble_bits
                            else np.zeros(self.header_len, np.uint8))

    def payload_scramble(self, n_bytes: int) -> np.ndarray:
        """XOR mask of additive_scrambler_bb(0x8a, 0x7f, 7), reset per packet."""
        if not self.scramble_bits:
            return np.zeros(n_bytes, np.uint8)
        if self._scramble is None or self._scramble.size < n_bytes:
            self._scramble = np.packbits(lfsr_bits(0x8a, 0x7f, 7, 8 * max(n_bytes, 512)), bitorder="little")
        return self._scramble[:n_bytes]

    def payload_symbols(self, n_bytes: int) -> int:
        """OFDM symbols after the header for a packet of n_bytes (CRC-32 included)."""
        return -(-(-(-n_bytes * 8 // self.bps)) // self.n_data)

    def body(self, shifted: np.ndarray) -> np.ndarray:
        """fft-shifted spectra [..., fft_len] -> time samples with CP, like fft_vcc(inverse,
        shift) + ofdm_cyclic_prefixer (rolloff 0)."""
        t = np.fft.ifft(np.fft.ifftshift(shifted, axes=-1), axis=-1) * self.fft_len
        return np.concatenate([t[..., -self.cp_len:], t], -1) if self.cp_len else t


def modulate(payloads, fmt: StockFormat | None = None, first_number: int = 0) -> np.ndarray:
    """Numpy replica of stock ofdm_tx: payloads (bytes each) -> complex64 samples, back to back."""
    fmt = fmt or StockFormat()
    F = fmt.fft_len
    out = []
    for n, p in enumerate(payloads):
        p = bytes(p)
        pk = p + zlib.crc32(p).to_bytes(4, "little")
        if len(pk) > 0xFFF:
            raise ValueError(f"packet of {len(p)} bytes does not fit the 12-bit length field")
        scr = (np.frombuffer(pk, np.uint8) ^ fmt.payload_scramble(len(pk))).tobytes()
        sym = fmt.points[bytes_to_chunks(scr, fmt.bps)]
        hdr = CONSTELLATIONS["bpsk"][header_bits(len(pk), first_number + n, fmt.header_len) ^ fmt.header_mask]
        ns = 1 + fmt.payload_symbols(len(pk))
        grid = np.zeros((ns + 2, F), complex)
        grid[0], grid[1] = fmt.sw1, fmt.sw2
        grid[2, fmt.data_bins] = hdr
        flat = np.zeros((ns - 1) * fmt.n_data, complex)
        flat[:sym.size] = sym
        if ns > 1:
            grid[3:, fmt.data_bins] = flat.reshape(ns - 1, fmt.n_data)
        j = np.arange(ns)
        grid[2:, fmt.pilot_bins] = fmt.pilot_symbols[j % len(fmt.pilot_symbols)]
        out.append(fmt.body(grid).reshape(-1))
    return (np.concatenate(out) if out else np.zeros(0)).astype(np.complex64)


# ---- receiver --------------------------------------------------------------------------------
_WAIT = object()


class StockOfdmReceiver:
    """Streaming receiver of stock ofdm_tx bursts on n_rx antennas (see the module docstring).

    ``push(samples [n_rx, N])``; ``pop_packets()`` -> one dict per burst whose header CRC-8
    checked, payload CRC good or not: payload (bytes, CRC-32 stripped), crc_ok, sample_offset
    (absolute stream index of the burst's first sample, the CP of sync word 1), header_number,
    cfo_hz (``sample_rate`` / fft_len per subcarrier) and cfo_subcarriers, snr_db (per resource
    element after combining, from the channel and noise estimates), evm_db, length (payload
    bytes), n_sym (OFDM symbols incl. the sync words). ``flush()`` once at the end of the
    stream. ``counters`` / ``stats()``: bursts_detected (verified preambles),
    detections_rejected, header_crc_failures, payload_crc_failures, packets_ok,
    nonfinite_samples, bursts_dropped_nonfinite.

    fft_len, cp_len, payload_mod ("bpsk", "qpsk", "8psk": bps_payload 1, 2, 3), scramble_bits
    and the carrier/pilot layout must match the transmitter; the other arguments tune the
    receiver (defaults suit the stock waveform).
    """

    def __init__(self, n_rx: int = 1, fft_len: int = 64, cp_len: int = 16, payload_mod: str = "bpsk",
                 scramble_bits: bool = False, sample_rate: float = 1.0,
                 occupied_carriers=DEF_OCCUPIED, pilot_carriers=DEF_PILOT_CARRIERS,
                 pilot_symbols=DEF_PILOT_SYMBOLS, threshold: float = 0.3, min_xcorr: float = 0.25,
                 backoff: int = 3, first_path_db: float = -6.0, smooth: bool = True,
                 pre_taps: int = 4, header_aided: bool = True, track: int = 3,
                 search_chunk: int = 2048):
        if int(n_rx) < 1:
            raise ValueError(f"n_rx must be >= 1, got {n_rx}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.fmt = f = StockFormat(fft_len, cp_len, payload_mod, scramble_bits, occupied_carriers,
                                   pilot_carriers, pilot_symbols)
        self.n_rx, self.sample_rate = int(n_rx), float(sample_rate)
        self.threshold, self.min_xcorr = threshold, min_xcorr
        self.first_path = 10 ** (first_path_db / 10)
        self.backoff = int(min(max(backoff, 0), f.cp_len // 2))
        self.smooth, self.chunk = bool(smooth), int(search_chunk)
        self.header_aided = bool(header_aided)
        self.track = max(int(track), 0)
        self._look = self.chunk
        self.L = f.fft_len // 2
        N, S = f.fft_len, f.sym_len
        # Preamble template for fine timing: sync word 1 body, CP of sync word 2, its body.
        pre = f.body(np.stack([f.sw1, f.sw2])).reshape(-1)
        self._tmpl = np.conj(pre[f.cp_len:]) / np.sqrt(np.sum(np.abs(pre[f.cp_len:]) ** 2))
        # Sync word 1 on odd carriers only: its second half is the first one negated.
        b1 = pre[f.cp_len:f.cp_len + N]
        self._half_sign = float(np.sign(np.real(np.vdot(b1[:self.L], b1[self.L:]))) or 1.0)
        k = np.arange(N) - N // 2
        self._shift = np.fft.fftshift(np.arange(N))
        # Backoff phase ramp undone, unitary FFT scaling (noise per RE = noise per sample).
        self._backoff_fix = np.exp(2j * np.pi * k * self.backoff / N) / np.sqrt(N)
        # Delay-domain basis over the active carriers for the smoothed channel estimate.
        self._taps = taps = np.arange(-int(pre_taps), f.cp_len + 1)
        self._basis = np.exp(-2j * np.pi * np.outer(k[f.active_bins], taps) / N)  # [K, T]
        wins = [(-1, 1), (-2, 4), (-3, 8), (-int(pre_taps), f.cp_len)]
        self._windows = sorted({(max(lo, taps[0]), min(hi, taps[-1])) for lo, hi in wins})
        self._smoothers: dict = {}
        # Positions of data/pilot/sw1 carriers among the active ones.
        pos = {b: i for i, b in enumerate(f.active_bins)}
        self._ai_data = np.array([pos[b] for b in f.data_bins])
        self._ai_pilot = np.array([pos[b] for b in f.pilot_bins])
        self._ai_sw1 = np.array([pos[b] for b in f.sw1_bins])
        # The stream is preceded by one symbol of zeros: a first burst whose first samples were
        # cut off (a receiver started late, a resampler's transient) still has its sync words
        # (its sample_offset is then negative).
        self._buf = np.zeros((self.n_rx, S), np.complex64)
        self._bad = np.zeros(S, bool)
        self._base = self._pos = -S
        self._cache: dict = {}
        self._out: list[dict] = []
        self.counters = dict(bursts_detected=0, detections_rejected=0, header_crc_failures=0,
                             payload_crc_failures=0, packets_ok=0, nonfinite_samples=0,
                             bursts_dropped_nonfinite=0)

    # ---- stream interface --------------------------------------------------------------------
    def push(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.ndim == 1 and self.n_rx == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] != self.n_rx:
            raise ValueError(f"expected samples [n_rx={self.n_rx}, N], got shape {x.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            x = x.astype(np.complex64, copy=False)
        bad = ~np.isfinite(x).all(axis=0)
        if bad.any():
            x = np.where(np.isfinite(x), x, 0).astype(np.complex64)
            self.counters["nonfinite_samples"] += int(bad.sum())
        self._buf = np.concatenate([self._buf, x], axis=1)
        self._bad = np.concatenate([self._bad, bad])

    def pop_packets(self) -> list[dict]:
        self._run()
        out, self._out = self._out, []
        return out

    def flush(self) -> list[dict]:
        """End of stream: zero padding so that the search reaches the stream's end (a burst
        that ends with the stream is normally decoded without it). Not for use mid-stream."""
        self.push(np.zeros((self.n_rx, 2 * self.fmt.sym_len + 2 * self.L), np.complex64))
        return self.pop_packets()

    @property
    def buffered_end(self) -> int:
        return self._base + self._buf.shape[1]

    def stats(self) -> dict:
        return dict(self.counters)

    # ---- detection loop ----------------------------------------------------------------------
    def _view(self, start: int, n: int) -> np.ndarray:
        i = start - self._base
        return self._buf[:, i:i + n]

    def _metric(self, start: int, n: int):
        """Schmidl-Cox |P|^2 / (E1 E2) summed over antennas for d in [start, start + n)."""
        L = self.L
        r = self._view(start, n + 2 * L).astype(np.complex128)
        prod = np.conj(r[:, :-L]) * r[:, L:]
        e = np.abs(r) ** 2

        def window(a):
            c = np.concatenate([np.zeros(a.shape[:-1] + (1,), a.dtype), np.cumsum(a, -1)], -1)
            return c[..., L:L + n] - c[..., :n]

        P = window(prod).sum(0)
        E = window(e[:, :-L]).sum(0) * window(e[:, L:]).sum(0)
        M = (P.real ** 2 + P.imag ** 2) / np.maximum(E, 1e-30)  # input is finite (push zeroes)
        return M, P

    def _run(self) -> None:
        S, L = self.fmt.sym_len, self.L
        while True:
            # Short first look after a burst (the next one often follows at once).
            n = min(self.buffered_end - self._pos - 2 * L - S, self._look)
            if n <= 0:
                break
            M, _ = self._metric(self._pos, n)
            hits = np.flatnonzero(M > self.threshold)
            if hits.size == 0:
                self._pos += n
                self._look = self.chunk
                continue
            d = self._pos + int(hits[0])
            below = np.flatnonzero(M[hits[0]:] <= self.threshold)
            if below.size == 0 and n - hits[0] > 4 * S:
                # Metric high for much longer than a preamble (a tone, a DC offset): no burst
                # can be told apart in there; skip the run, keep its end.
                self.counters["detections_rejected"] += 1
                self._pos += n - S
                continue
            self._look = self.chunk
            nxt = self._burst(d)
            if nxt is _WAIT:
                self._pos = d
                break
            self._pos = max(int(nxt), d + 1)
        self._trim()

    def _trim(self) -> None:
        keep = self._pos - 2 * self.fmt.sym_len - self.L
        drop = keep - self._base
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._bad = self._bad[drop:]
            self._base += drop
            self._cache = {k: v for k, v in self._cache.items() if k >= self._pos}

    # ---- one burst -----------------------------------------------------------------------
    def _acquire(self, d: int):
        """Detection at d -> (start, eps, noise_var[n_rx]) or None (no stock preamble)."""
        f, L, N, S, cp = self.fmt, self.L, self.fmt.fft_len, self.fmt.sym_len, self.fmt.cp_len
        M, P = self._metric(d, S)
        m = int(np.argmax(M))
        if M[max(0, m - cp // 4):m + cp // 4 + 1].mean() < self.threshold:
            return None
        eps0 = float(np.angle(P[m] * self._half_sign) / np.pi)  # CFO in subcarrier spacings
        # Fine timing: burst start candidates around the crossing, after CFO removal.
        lo = max(d - S // 2 + 8, self._base)
        clipped = lo == self._base  # candidates cut by the (padded) stream start
        T = self._tmpl.size
        hi = d + cp + 16
        win = self._view(lo + cp, hi - lo + T).astype(np.complex128)
        win = win * np.exp(-2j * np.pi * eps0 * np.arange(win.shape[1]) / N)
        seg = np.lib.stride_tricks.sliding_window_view(win, T, axis=1)  # [rx, cand, T]
        C = (np.abs(seg @ self._tmpl) ** 2).sum(0)
        En = np.sum(np.abs(seg) ** 2, axis=(0, 2))
        peak = int(np.argmax(C))
        if not En[peak] > 0 or C[peak] / En[peak] < self.min_xcorr or peak == C.size - 1 or (peak == 0 and not clipped):
            return None
        Cp = np.r_[-np.inf, C, -np.inf]
        local = (C >= Cp[:-2]) & (C >= Cp[2:]) & (C >= self.first_path * C[peak])
        a = max(0, peak - cp // 2)
        start = lo + a + int(np.flatnonzero(local[a:peak + 1])[0])
        # CFO and noise from sync word 1: periodic with period L over its CP and body (the first
        # quarter of the CP is skipped: it holds the previous burst's multipath tail).
        s1 = self._view(start + cp // 4, S - cp // 4).astype(np.complex128)
        c = np.sum(np.conj(s1[:, :-L]) * s1[:, L:]) * self._half_sign
        eps = float(np.angle(c) / np.pi)
        rot = np.exp(-1j * np.pi * eps) * self._half_sign  # phase advance over L samples
        diff = s1[:, L:] * rot - s1[:, :-L]
        noise_t = np.mean(np.abs(diff) ** 2, axis=1) / 2  # per time sample, per antenna
        return start, eps, noise_t

    def _fft(self, start: int, eps: float, sym0: int, n_sym: int) -> np.ndarray:
        """[rx, n_sym, fft_len] fft-shifted spectra of symbols sym0.. of the burst at start,
        CFO removed with the phase referenced to the burst start."""
        f, N, S = self.fmt, self.fmt.fft_len, self.fmt.sym_len
        s0 = start + sym0 * S + f.cp_len - self.backoff
        idx = np.arange(n_sym)[:, None] * S + np.arange(N)
        span = self._view(s0, int(idx[-1, -1]) + 1).astype(np.complex128)
        t = idx + (s0 - start)
        bodies = span[:, idx] * np.exp(-2j * np.pi * eps * t / N)
        Y = np.fft.fft(bodies, axis=-1)[..., self._shift]
        return Y * self._backoff_fix

    def _smoother(self, with_header: bool):
        """Per channel model (tap windows, per-carrier): (U^H [T, n_obs], singular values [T],
        B V [K_active, T]) of the whitened observation matrix sqrt(w) B[rows] (rows: sync word
        1's carriers with weight 2, sync word 2's and, once its bits are known, the header's
        with weight 1)."""
        key = bool(with_header)
        if key not in self._smoothers:
            K = self.fmt.active_bins.size
            rows = [self._ai_sw1, np.arange(K)] + ([np.arange(K)] if with_header else [])
            w = np.concatenate([np.full(self._ai_sw1.size, 2.0)] + [np.ones(K)] * (len(rows) - 1))
            out = []
            # Tap windows of the delay-domain basis, then one free value per carrier (for
            # channels longer than the CP, where no short tap model fits).
            bases = [self._basis[:, lo - self._taps[0]:hi - self._taps[0] + 1] for lo, hi in self._windows]
            for Bw in bases + [np.eye(K)]:
                U, sv, Vh = np.linalg.svd(np.sqrt(w)[:, None] * Bw[np.concatenate(rows)], full_matrices=False)
                out.append((U.conj().T, sv, Bw @ Vh.conj().T))
            self._smoothers[key] = (np.sqrt(w), out)
        return self._smoothers[key]

    def _channel(self, obs: list, noise: np.ndarray) -> np.ndarray:
        """Per-antenna channel [rx, K_active] from LS observations [sync word 1 (its carriers),
        sync word 2, optionally the header (all active carriers)], each [rx, K_i], referenced
        to sync word 2. Residual CFO turns the channel from one symbol to the next: each is
        phase-aligned to sync word 2 first. Then LMMSE in the delay domain with a uniform power
        over the taps of a window chosen per burst by an AIC test on the LS residual (short for
        a flat channel, up to [-pre_taps, cp_len] for multipath, per carrier beyond the CP)."""
        H1, H2 = obs[0], obs[1]
        al = [H1 * np.exp(1j * np.angle(np.sum(np.conj(H1) * H2[:, self._ai_sw1]))), H2]
        for Hx in obs[2:]:
            al.append(Hx * np.exp(1j * np.angle(np.sum(np.conj(Hx) * H2))))
        if not self.smooth:
            H = np.mean(al[1:], axis=0)
            H[:, self._ai_sw1] = (H[:, self._ai_sw1] * (len(al) - 1) + 2 * al[0]) / (len(al) + 1)
            return H
        sw, wins = self._smoother(len(obs) > 2)
        y = np.concatenate(al, axis=1) * sw  # whitened: noise nv on every row
        nv = noise[:, None]
        yy = np.sum(np.abs(y) ** 2, axis=1, keepdims=True)
        best = None
        for UH, sv, BV in wins:
            c = y @ UH.T  # [rx, T]
            cost = float(np.sum((yy - np.sum(np.abs(c) ** 2, axis=1, keepdims=True)) / nv)) + 2 * sv.size * self.n_rx
            if best is None or cost < best[0]:
                best = (cost, c, sv, BV)
        _, c, sv, BV = best
        p = np.maximum(np.mean(np.abs(H2) ** 2, axis=1, keepdims=True) - nv, nv * 1e-3) / sv.size
        return (c * (sv / (sv ** 2 + nv / p))) @ BV.T

    def _burst(self, d: int):
        """Decode the burst detected at d. Returns where the search resumes, or _WAIT."""
        f, S = self.fmt, self.fmt.sym_len
        # Acquisition (cached while the burst's samples are still arriving).
        # Acquisition reads up to the header's end of a start <= d + S/2 (see _acquire).
        if d + S // 2 + 3 * S > self.buffered_end:
            return _WAIT
        acq = self._cache.get(d)
        if acq is None:
            acq = self._acquire(d)
            if acq is None:
                self.counters["detections_rejected"] += 1
                # Every start within d +- S/2 was tested: the search may resume at d + S/2.
                return d + S // 2 - 8
            start, eps, noise_t = acq
            Y = self._fft(start, eps, 0, 3)  # sync words and header
            noise = np.maximum(noise_t, 1e-20)  # per RE: unitary FFT keeps the time variance
            ab = f.active_bins
            obs = [Y[:, 0, f.sw1_bins] / f.sw1[f.sw1_bins], Y[:, 1, ab] / f.sw2[ab]]
            H = self._channel(obs, noise)
            hdr = self._header(Y[:, 2], H, noise)
            if hdr is not None and self.header_aided:
                # Header bits known once their CRC checks: a third training symbol.
                X = np.zeros(f.fft_len, complex)
                X[f.data_bins] = CONSTELLATIONS["bpsk"][header_bits(*hdr, f.header_len) ^ f.header_mask]
                X[f.pilot_bins] = f.pilot_symbols[0]
                H = self._channel(obs + [Y[:, 2, ab] / X[ab]], noise)
            acq = self._cache[d] = (start, eps, noise, H, hdr)
            self.counters["bursts_detected"] += 1
            if hdr is None:
                self.counters["header_crc_failures"] += 1
        start, eps, noise, H, hdr = acq
        if hdr is None:
            self._cache.pop(d, None)
            return start + S  # past sync word 1's plateau
        length, number = hdr
        n_pay = f.payload_symbols(length)
        end = start + (3 + n_pay) * S
        if end > self.buffered_end:
            return _WAIT
        self._cache.pop(d, None)
        i0 = start - self._base
        if self._bad[max(i0, 0):end - self._base].any():
            self.counters["bursts_dropped_nonfinite"] += 1
            return start + 3 * S
        pkt = self._payload(start, eps, noise, H, length, number, n_pay)
        if pkt["crc_ok"]:
            self.counters["packets_ok"] += 1
            nxt = end - f.cp_len  # the next burst may follow immediately
            self._look = 4 * S
        else:
            self.counters["payload_crc_failures"] += 1
            nxt = start + 3 * S  # the header may have lied: search the payload for preambles
        self._out.append(pkt)
        return nxt

    def _combine(self, Y: np.ndarray, H: np.ndarray, noise: np.ndarray):
        """MRC over antennas. Y [rx, n, K_active], H [rx, K_active] -> (z [n, K], gain [K])."""
        w = np.conj(H) / noise[:, None]
        g = np.sum(np.abs(H) ** 2 / noise[:, None], axis=0)
        z = np.einsum("rk,rnk->nk", w, Y) / np.maximum(g, 1e-30)
        return z, g

    def _header(self, Yh: np.ndarray, H: np.ndarray, noise: np.ndarray):
        f = self.fmt
        z, g = self._combine(Yh[:, None, f.active_bins], H, noise)
        z = z[0]
        p = f.pilot_symbols[0]
        ph = np.sum(g[self._ai_pilot] * z[self._ai_pilot] * np.conj(p))
        z = z * np.exp(-1j * np.angle(ph))
        bits = (z[self._ai_data].real > 0).astype(np.uint8) ^ f.header_mask
        return parse_header(bits)

    def _payload(self, start, eps, noise, H, length, number, n_pay) -> dict:
        f = self.fmt
        Y = self._fft(start, eps, 2, 1 + n_pay)[:, :, f.active_bins]
        z, g = self._combine(Y, H, noise)  # [1 + n_pay, K]
        j = np.arange(1 + n_pay)
        pil = f.pilot_symbols[j % len(f.pilot_symbols)]
        gp = g[self._ai_pilot]
        c = np.sum(gp * z[:, self._ai_pilot] * np.conj(pil), axis=1)  # per-symbol common phase
        # Residual CFO: phase slope across the burst (differential, wrap-free), then the offset,
        # then what is left (a slow phase drift) smoothed over +-track symbols.
        slope = float(np.angle(np.sum(c[1:] * np.conj(c[:-1])))) if c.size > 1 else 0.0
        r = c * np.exp(-1j * slope * j)
        t = self.track
        rs = np.convolve(np.r_[np.zeros(t), r, np.zeros(t)], np.ones(2 * t + 1), "valid") if t else r
        rs = np.where(rs != 0, rs, np.sum(r))
        phase = slope * j + np.angle(rs)
        z = z * np.exp(-1j * phase)[:, None]
        zd = z[1:, self._ai_data].reshape(-1)
        n_chunks = -(-length * 8 // f.bps)
        zd = zd[:n_chunks]
        idx = np.argmin(np.abs(zd[:, None] - f.points[None, :]), axis=1)
        raw = chunks_to_bytes(idx, f.bps, length)
        pk = (np.frombuffer(raw, np.uint8) ^ f.payload_scramble(length)).tobytes()
        payload, crc = pk[:-4], pk[-4:]
        crc_ok = length >= 4 and zlib.crc32(payload).to_bytes(4, "little") == crc
        err = zd - f.points[idx]
        evm = float(np.mean(np.abs(err) ** 2) / np.mean(np.abs(f.points) ** 2)) if zd.size else 0.0
        snr = float(np.mean(g))
        eps_tot = eps + slope * f.fft_len / (2 * np.pi * f.sym_len)
        return dict(payload=payload if length >= 4 else b"", crc_ok=bool(crc_ok), sample_offset=int(start),
                    cfo_hz=eps_tot * self.sample_rate / f.fft_len, cfo_subcarriers=eps_tot,
                    snr_db=10 * np.log10(max(snr, 1e-12)),
                    evm_db=10 * np.log10(max(evm, 1e-12)), header_number=int(number),
                    length=int(length) - 4, n_sym=int(3 + n_pay))
