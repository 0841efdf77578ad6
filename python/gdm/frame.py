"""FrameSpec: the one description of an OFDM frame shared by TX, RX, simulators, training and
model metadata. Presets are data (``PRESETS``); a spec round-trips through JSON.

Conventions
- Carrier indices are signed, relative to DC, ascending (lowest frequency first). The FFT bin of
  carrier ``k`` in an fft-shifted vector is ``k + fft_len // 2``.
- Grids are ``[n_sym, n_occ]`` over ``occupied`` carriers.
- Resource elements carry unit average power per tx stream before the TX scales every stream by
  ``tx_amplitude`` (1/sqrt(n_tx)), so total transmit power does not grow with n_tx. Estimators
  estimate the *effective* channel (physical channel times ``tx_amplitude``); equalizers then work
  with unit-power constellations.
- SNR is per resource element and receive antenna: received signal power / noise variance, with
  the channel normalised to unit average power per link.
"""
from __future__ import annotations

import dataclasses
import json
from functools import cached_property

import numpy as np

MODULATIONS = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6}
FECS = ("none", "ldpc12")

PRESETS: dict[str, dict] = {
    # 15 kHz spacing at 1.92 Msps; DMRS-like pilots on symbols 2 and 11 across all carriers.
    "nr72": dict(
        fft_len=128, cp_len=16, sample_rate=1.92e6,
        occupied=[*range(-36, 0), *range(1, 37)],
        n_sym=14, pilot_symbols=[2, 11], pilot_carriers=None,
        modulation="16qam", seed=0x6D64,
    ),
    # 20 MHz-class grid at 30 kHz spacing (GPU work): 624 carriers, NR normal CP at 30.72 Msps.
    "nr20": dict(
        fft_len=1024, cp_len=72, sample_rate=30.72e6,
        occupied=[*range(-312, 0), *range(1, 313)],
        n_sym=14, pilot_symbols=[2, 11], pilot_carriers=None,
        modulation="16qam", seed=0x6D64,
    ),
    # 802.11-like numerology for interop with GNU Radio's OFDM examples: 4 pilot carriers on
    # every symbol, 48 data carriers.
    "wifi64": dict(
        fft_len=64, cp_len=16, sample_rate=1e6,
        occupied=[*range(-26, 0), *range(1, 27)],
        n_sym=12, pilot_symbols=None, pilot_carriers=[-21, -7, 7, 21],
        modulation="qpsk", seed=0x6D64, fec="none",
    ),
}


def _qpsk_sequence(rng: np.random.Generator, n: int) -> np.ndarray:
    return (np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, n)))).astype(np.complex64)


@dataclasses.dataclass(frozen=True)
class FrameSpec:
    name: str
    fft_len: int
    cp_len: int
    sample_rate: float
    occupied: tuple[int, ...]
    n_sym: int
    pilot_symbols: tuple[int, ...] | None  # None: pilots on every symbol
    pilot_carriers: tuple[int, ...] | None  # None: pilots on every occupied carrier
    modulation: str = "16qam"
    n_tx: int = 1
    seed: int = 0x6D64
    fec: str = "ldpc12"  # "none" or "ldpc12" (rate-1/2 repeat-accumulate LDPC, see ofdm/fec.py)

    def __post_init__(self):
        occ = tuple(int(k) for k in self.occupied)
        object.__setattr__(self, "occupied", occ)
        for f in ("pilot_symbols", "pilot_carriers"):
            v = getattr(self, f)
            if v is not None:
                object.__setattr__(self, f, tuple(int(x) for x in v))
        problems = []
        if self.fft_len <= 0 or self.fft_len & (self.fft_len - 1):
            problems.append(f"fft_len must be a power of two, got {self.fft_len}")
        if not 0 <= self.cp_len < self.fft_len:
            problems.append(f"cp_len must be in [0, fft_len), got {self.cp_len}")
        if list(occ) != sorted(set(occ)) or 0 in occ:
            problems.append("occupied carriers must be unique, ascending and exclude DC (0)")
        if occ and (min(occ) < -self.fft_len // 2 or max(occ) >= self.fft_len // 2):
            problems.append(f"occupied carriers must lie in [-{self.fft_len // 2}, {self.fft_len // 2})")
        if self.modulation not in MODULATIONS:
            problems.append(f"unknown modulation {self.modulation!r}; valid: {', '.join(MODULATIONS)}")
        if self.fec not in FECS:
            problems.append(f"unknown fec {self.fec!r}; valid: {', '.join(FECS)}")
        if self.n_tx not in (1, 2, 4):
            problems.append(f"n_tx must be 1, 2 or 4, got {self.n_tx}")
        if self.pilot_symbols is not None and not all(0 <= s < self.n_sym for s in self.pilot_symbols):
            problems.append("pilot_symbols must be within [0, n_sym)")
        if self.pilot_carriers is not None and not set(self.pilot_carriers) <= set(occ):
            problems.append("pilot_carriers must be occupied carriers")
        if problems:
            raise ValueError("invalid FrameSpec: " + "; ".join(problems))

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides) -> "FrameSpec":
        if name not in PRESETS:
            raise ValueError(f"unknown frame preset {name!r}; valid presets: {', '.join(PRESETS)}")
        return cls(name=name, **{**PRESETS[name], **overrides})

    @staticmethod
    def presets() -> list[str]:
        return list(PRESETS)

    def replace(self, **changes) -> "FrameSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict) -> "FrameSpec":
        d = json.loads(text) if isinstance(text, str) else dict(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FrameSpec fields {sorted(unknown)}; valid: {sorted(known)}")
        return cls(**d)

    # ---- derived geometry ---------------------------------------------------------------
    @property
    def n_occ(self) -> int:
        return len(self.occupied)

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]

    @property
    def symbol_len(self) -> int:
        return self.fft_len + self.cp_len

    @property
    def frame_len(self) -> int:
        """Samples per frame including the Schmidl-Cox preamble symbol."""
        return (self.n_sym + 1) * self.symbol_len

    @property
    def subcarrier_spacing(self) -> float:
        return self.sample_rate / self.fft_len

    @property
    def tx_amplitude(self) -> float:
        return 1.0 / np.sqrt(self.n_tx)

    @cached_property
    def occupied_bins(self) -> np.ndarray:
        """Positions of the occupied carriers in an fft-shifted vector of length fft_len."""
        return np.asarray(self.occupied) + self.fft_len // 2

    @cached_property
    def _pilot_any(self) -> np.ndarray:
        rows = np.zeros(self.n_sym, bool)
        rows[list(self.pilot_symbols) if self.pilot_symbols is not None else slice(None)] = True
        cols = np.zeros(self.n_occ, bool)
        if self.pilot_carriers is None:
            cols[:] = True
        else:
            cols[np.searchsorted(self.occupied, self.pilot_carriers)] = True
        return rows[:, None] & cols[None, :]

    def pilot_mask(self, tx: int = 0) -> np.ndarray:
        """bool [n_sym, n_occ]: where stream ``tx`` sends a pilot. With several tx streams the
        pilot carriers are split by frequency comb (tx0 even positions, tx1 odd, ...)."""
        if not 0 <= tx < self.n_tx:
            raise ValueError(f"tx must be in [0, {self.n_tx}), got {tx}")
        return self._pilot_masks[tx]

    @cached_property
    def _pilot_masks(self) -> tuple:
        # computed once: the receiver asks for them for every batch (read-only: shared)
        cols = np.flatnonzero(self._pilot_any.any(axis=0))
        out = []
        for tx in range(self.n_tx):
            comb = np.zeros(self.n_occ, bool)
            comb[cols[tx::self.n_tx]] = True
            m = self._pilot_any & comb[None, :]
            m.setflags(write=False)
            out.append(m)
        return tuple(out)

    @property
    def any_pilot_mask(self) -> np.ndarray:
        """bool [n_sym, n_occ]: resource elements reserved for pilots of any stream."""
        return self._pilot_any

    @property
    def data_mask(self) -> np.ndarray:
        return ~self._pilot_any

    @property
    def n_data(self) -> int:
        """Data resource elements per stream per frame."""
        return int(self.data_mask.sum())

    @property
    def bits_per_frame(self) -> int:
        """Coded (channel) bits per frame."""
        return self.n_data * self.bits_per_symbol * self.n_tx

    @property
    def info_bits_per_frame(self) -> int:
        """Bits before FEC: header + payload + CRC + padding."""
        return self.bits_per_frame if self.fec == "none" else self.bits_per_frame // 2

    @cached_property
    def _pilot_sequence(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return _qpsk_sequence(rng, self.n_sym * self.n_occ).reshape(self.n_sym, self.n_occ)

    def pilot_values(self, tx: int = 0) -> np.ndarray:
        """complex64 [n_sym, n_occ]: unit-modulus pilot symbols of stream ``tx``, 0 elsewhere."""
        if not 0 <= tx < self.n_tx:
            raise ValueError(f"tx must be in [0, {self.n_tx}), got {tx}")
        return self._pilot_value_grids[tx]

    @cached_property
    def _pilot_value_grids(self) -> tuple:
        out = []
        for tx in range(self.n_tx):
            v = np.where(self._pilot_masks[tx], self._pilot_sequence, 0).astype(np.complex64)
            v.setflags(write=False)
            out.append(v)
        return tuple(out)

    @cached_property
    def preamble_freq(self) -> np.ndarray:
        """Schmidl-Cox symbol on the occupied carriers: energy on even carriers only, so the
        time-domain symbol has two identical halves. Scaled by sqrt(2) to keep unit RE power."""
        rng = np.random.default_rng(self.seed + 1)
        seq = _qpsk_sequence(rng, self.n_occ) * np.sqrt(2)
        return np.where(np.asarray(self.occupied) % 2 == 0, seq, 0).astype(np.complex64)

    def describe(self) -> str:
        return (f"{self.name}: fft {self.fft_len}, cp {self.cp_len}, {self.n_occ} carriers, "
                f"{self.n_sym} symbols, {self.modulation}, n_tx {self.n_tx}, "
                f"{self.sample_rate / 1e6:g} Msps, fec {self.fec}, {self.info_bits_per_frame} info bits/frame")
