"""Adversarial sample streams, one hypothesis property per input class, through the receiver cores
the blocks wrap: FrameSynchronizer (chunked like a flowgraph) -> LS+interp -> LMMSE equalizer ->
decoder -> LinkScorer. Nothing may crash, hang or grow without bound; every frame the synchronizer
emits is accounted for by the scorer (decoded, or rejected with a reason and counted); every
accepted frame is a frame that was really sent; streams without a whole frame decode nothing."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fuzzbook import examples
from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.metrics.link import LinkScorer
from gnuradio.gdm.ofdm import framing
from gnuradio.gdm.ofdm.equalizer import equalize
from gnuradio.gdm.ofdm.modem import occupied
from gnuradio.gdm.ofdm.sync import FrameSynchronizer
from gnuradio.gdm.ofdm.transceiver import decode_batch, random_payload, transmit

SPEC = FrameSpec.preset("nr72")
N_RX = 2
N_BYTES = framing.max_payload_bytes(SPEC.info_bits_per_frame)
PAYLOADS = [random_payload(i, N_BYTES) for i in range(3)]
FRAMES, _, _ = transmit(PAYLOADS, range(3), SPEC)
FL = SPEC.frame_len
EST = estimation.make("ls_interp", SPEC, N_RX, 1)

amp = st.floats(1e-3, 1e3)
SEG = {
    "noise": st.tuples(st.just("noise"), st.integers(1, 6000), st.floats(1e-6, 1e6)),
    "zeros": st.tuples(st.just("zeros"), st.integers(1, 6000), st.just(0.0)),
    "frame": st.tuples(st.just("frame"), st.integers(0, 2), amp),
    "clipped": st.tuples(st.just("clipped"), st.integers(0, 2), st.floats(0.05, 1.5)),
    "loud": st.tuples(st.just("frame"), st.integers(0, 2), st.floats(1e6, 1e14)),
    "cut": st.tuples(st.just("cut"), st.integers(1, FL - 1), amp),
    "preamble": st.tuples(st.just("preamble"), st.integers(1, 4), amp),
    "nan": st.tuples(st.just("nan"), st.integers(1, 500), st.sampled_from([np.nan, np.inf, -np.inf])),
    "nanburst": st.tuples(st.just("nanburst"), st.integers(0, 2), st.integers(1, 64)),
    "huge": st.tuples(st.just("huge"), st.integers(1, 3000), st.just(1e30)),
}
# input class -> the segments its streams are made of
CLASSES = {
    "noise only": ["noise"],
    "all zeros": ["zeros"],
    "clipped frames": ["clipped", "noise", "zeros"],
    "huge values": ["huge", "loud", "frame"],
    "NaN/Inf bursts": ["nan", "nanburst", "frame", "noise"],
    "truncated frames": ["cut", "zeros", "noise"],
    "preambles without frames": ["preamble", "zeros", "noise"],
    "mixed": list(SEG),
}


def render(segs, rng):
    """-> (samples [N_RX, N] complex64, number of invalid samples, whole frames in it, cut
    frames in it)."""
    out, invalid, whole, cuts = [], 0, 0, 0
    for kind, n, a in segs:
        if kind == "noise":
            out.append((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * a)
        elif kind == "zeros":
            out.append(np.zeros(n))
        elif kind == "frame":
            out.append(FRAMES[0, n * FL:(n + 1) * FL] * a)
            whole += 1
        elif kind == "clipped":  # I and Q clipped at a fraction of the rms amplitude
            f = FRAMES[0, n * FL:(n + 1) * FL]
            c = a * np.sqrt(np.mean(np.abs(f) ** 2) / 2)
            out.append(np.clip(f.real, -c, c) + 1j * np.clip(f.imag, -c, c))
            whole += 1
        elif kind == "cut":
            out.append(FRAMES[0, :n] * a)
            cuts += 1
        elif kind == "preamble":
            out.append(np.tile(FRAMES[0, :SPEC.symbol_len], n) * a)
        elif kind == "nanburst":  # a frame with a burst of NaN inside
            f = FRAMES[0, n * FL:(n + 1) * FL].astype(complex)
            at = int(rng.integers(0, FL - a))
            f[at:at + a] = np.nan
            out.append(f)
            invalid += a
        elif kind == "huge":
            out.append((rng.standard_normal(n) + 1j * rng.standard_normal(n)) * a)
            invalid += n
        else:  # nan / inf
            out.append(np.full(n, a, complex))
            invalid += n
    x = np.concatenate(out) if out else np.zeros(1)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.stack([x, x * 0.5]).astype(np.complex64), invalid, whole, cuts


def receive(y, chunk):
    """The receiver cores on a stream fed in ``chunk``-sample pieces -> (scorer summary, sync,
    frames, largest synchronizer buffer, decoded frames)."""
    sync = FrameSynchronizer(SPEC, N_RX)
    frames, biggest = [], 0
    for i in range(0, y.shape[1], chunk):
        sync.push(y[:, i:i + chunk])
        frames += sync.pop_frames()
        biggest = max(biggest, sync._buf.shape[1])
    frames += sync.flush()
    scorer = LinkScorer(SPEC)
    for s, p in enumerate(PAYLOADS):
        scorer.add_tx(s, p)
    good = [f for f in frames if not f.nonfinite]
    decoded = []
    if good:
        Y = np.stack([occupied(f.grid, SPEC) for f in good])
        nv = np.array([f.noise_var for f in good])
        X, V = equalize(Y, EST.estimate(Y, nv), nv, "lmmse")
        decoded = decode_batch(X, V, SPEC)
    it = iter(decoded)
    for f in frames:  # the frame_decoder block's reports
        rep = {"index": f.index, "sample_offset": f.sample_offset, "cfo_hz": f.cfo_hz}
        if f.nonfinite:
            rep.update(header_ok=False, crc_ok=False, reason="non-finite input")
        else:
            d = next(it)
            rep.update(seq=d.seq, header_ok=d.header_ok, crc_ok=d.crc_ok, reason=d.reason, evm_db=d.evm_db,
                       bits=np.packbits(d.bits))
        scorer.add_rx(rep)
    return scorer.summary(), sync, frames, biggest, decoded


def _check_class(fuzz, name, segs, chunk, seed):
    with fuzz.case(name, "sample streams: items = whole frames in the stream; accepted = frames decoded "
                         "(CRC ok); rejected = frames rejected by the decoder (header, CRC, non-finite "
                         "flag) + false preambles rejected by sync") as rec:
        y, invalid, whole, cuts = render(segs, np.random.default_rng(seed))
        s, sync, frames, biggest, decoded = receive(y, chunk)
        assert biggest <= chunk + 4 * FL + 8192  # bounded buffer, whatever arrives
        for f in frames:
            assert np.isfinite(f.grid).all() and f.grid.shape == (N_RX, SPEC.n_sym, SPEC.fft_len)
        assert sync.nonfinite_samples == invalid  # every invalid sample seen and counted
        if invalid == 0:
            assert not any(f.nonfinite for f in frames)
        # every emitted frame is accounted for by the scorer's counters
        assert s["frames_detected"] == len(frames)
        assert s["frames_ok"] + s["header_errors"] + s["crc_errors"] + s["flagged"] == len(frames), s
        assert s["flagged"] == sum(f.nonfinite for f in frames)
        for d in decoded:
            assert d.crc_ok or d.reason  # a rejected frame says why
            if d.crc_ok:  # no false accepts: the payload is the one sent with that sequence number
                assert d.seq < len(PAYLOADS) and d.payload == PAYLOADS[d.seq]
        # LDPC may recover a frame missing its last symbols; nothing else decodes
        assert s["frames_ok"] <= whole + cuts
        rec.add(items=whole, accepted=s["frames_ok"],
                rejected=s["header_errors"] + s["crc_errors"] + s["flagged"] + sync.detections_rejected)


def _property(name, n_ci):
    kinds = CLASSES[name]

    @examples(n_ci)
    @given(st.lists(st.one_of(*(SEG[k] for k in kinds)), min_size=1, max_size=6),
           st.integers(1, 5000), st.integers(0, 2**31 - 1))
    def test(fuzz, segs, chunk, seed):
        _check_class(fuzz, name, segs, chunk, seed)

    test.__name__ = "test_" + "".join(c if c.isalnum() else "_" for c in name.lower())
    return test


test_noise_only = _property("noise only", 8)
test_all_zeros = _property("all zeros", 5)
test_clipped_frames = _property("clipped frames", 8)
test_huge_values = _property("huge values", 8)
test_nan_inf_bursts = _property("NaN/Inf bursts", 8)
test_truncated_frames = _property("truncated frames", 8)
test_preambles_without_frames = _property("preambles without frames", 8)
test_mixed_streams = _property("mixed", 15)
