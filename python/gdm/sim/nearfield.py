"""Near-field (spherical-wave) uplink channel of an extremely large ULA, with the far field as a
special case, hybrid analog combiners and per-user pilot observations.

Geometry. The base station has a uniform linear array of ``n_ant`` elements along the x axis,
centred at the origin, spacing ``spacing_wl`` wavelengths of the carrier. Element n sits at
``delta_n * d`` with ``delta_n = n - (N - 1) / 2``. A source at distance r from the array centre and
direction theta = sin(angle from broadside) is at distance

    r_n = sqrt(r^2 + delta_n^2 d^2 - 2 r delta_n d theta)

from element n. Its (unit-norm) near-field array response is
``b_n(theta, r) = exp(-j 2 pi f / c (r_n - r)) / sqrt(N)``; as r grows this becomes the planar
steering vector ``exp(+j 2 pi f / c delta_n d theta) / sqrt(N)``.

Channel. User u sees L paths: path 0 comes straight from the user (at distance r_u, direction
theta_u), paths 1..L-1 bounce off point scatterers at (r_l, theta_l) drawn from the same region.
Path delays follow the geometry (tau_0 = r_u / c, tau_l = (|p_u - p_l| + r_l) / c). On subcarrier
k (frequency f_k = fc + B (k - (K - 1) / 2) / K, K subcarriers spread over the band B)

    h_k = sqrt(N / L) sum_l g_l exp(-j 2 pi (f_k - fc) tau_l) b(theta_l, r_l; f)

with g_l ~ CN(0, 1) (the carrier phase exp(-j 2 pi fc tau_l) is absorbed in g_l), so that
E|h_{n,k}|^2 = 1: large-scale fading is assumed compensated (power control). ``f`` in the array
response is the carrier (``beam_squint=False``, default: the support is common to all
subcarriers, as in Cui & Dai 2022) or f_k (``beam_squint=True``).

Pilots. Users are separated by orthogonal pilots (e.g. a length-M orthogonal cover per combiner
setting), so each user's observation for pilot symbol p is

    y_p = W_p h s_p + W_p n_p,    n_p ~ CN(0, noise_var I_N),  SNR = 1 / noise_var,

with W_p an N_RF x N random-phase analog combiner (entries exp(j phi) / sqrt(N)), the same on all
subcarriers (analog) and shared by all users of a frame. Observations are returned with the
(unit-modulus, known) pilot symbol already removed: s_p = 1 without loss of generality.

Shapes: H complex64 [..., N, K] (antenna, subcarrier); combiners W complex64 [..., P, N_RF, N];
observations Y complex64 [..., P, N_RF, K].
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

C0 = 299_792_458.0


@dataclasses.dataclass(frozen=True)
class NearFieldConfig:
    """Parameters of the XL-MIMO uplink (defaults after Cui & Dai 2022 and the GDM4MMIMO case
    study: N = 256, N_RF = 16, M = 16 users, 100 GHz, 100 MHz)."""
    n_ant: int = 256
    spacing_wl: float = 0.5            # element spacing in carrier wavelengths
    fc_hz: float = 100e9
    bandwidth_hz: float = 100e6
    n_subcarriers: int = 8             # K pilot subcarriers spread over the band
    n_rf: int = 16
    n_users: int = 16
    n_paths: int = 6                   # L (path 0 = line of sight from the user)
    r_range_m: tuple = (5.0, 40.0)     # user and scatterer distances, uniform
    angle_range_deg: tuple = (-60.0, 60.0)  # directions from broadside, uniform in degrees
    far_field: bool = False            # planar wavefronts (same geometry and delays)
    beam_squint: bool = False          # frequency-dependent array response

    @property
    def wavelength_m(self) -> float:
        return C0 / self.fc_hz

    @property
    def spacing_m(self) -> float:
        return self.spacing_wl * self.wavelength_m

    @property
    def aperture_m(self) -> float:
        return (self.n_ant - 1) * self.spacing_m

    @property
    def rayleigh_distance_m(self) -> float:
        """2 D^2 / lambda: beyond it the far-field model is accurate."""
        return 2 * self.aperture_m ** 2 / self.wavelength_m

    @property
    def fresnel_min_m(self) -> float:
        """0.62 sqrt(D^3 / lambda): the near edge of the radiating near field."""
        return 0.62 * np.sqrt(self.aperture_m ** 3 / self.wavelength_m)

    def subcarrier_offsets_hz(self) -> np.ndarray:
        k = np.arange(self.n_subcarriers)
        return self.bandwidth_hz * (k - (self.n_subcarriers - 1) / 2) / self.n_subcarriers

    def replace(self, **kw) -> "NearFieldConfig":
        return dataclasses.replace(self, **kw)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        return json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()},
                          sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> "NearFieldConfig":
        d = json.loads(s)
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})


def element_positions(n_ant: int, spacing_m: float) -> np.ndarray:
    """x coordinates (metres) of the array elements, centred on 0."""
    return (np.arange(n_ant) - (n_ant - 1) / 2) * spacing_m


def nearfield_steering(theta, r, n_ant: int, spacing_m: float, wavelength_m) -> np.ndarray:
    """Unit-norm spherical-wave array response. theta = sin(direction), r in metres (same shape,
    broadcast); wavelength_m broadcasts against the leading axes too. Returns [..., n_ant]."""
    theta = np.asarray(theta, float)[..., None]
    r = np.asarray(r, float)[..., None]
    lam = np.asarray(wavelength_m, float)
    lam = lam[..., None] if lam.ndim else lam
    x = element_positions(n_ant, spacing_m)
    # r_n - r, written to stay accurate for huge r: (r_n^2 - r^2) / (r_n + r).
    num = x ** 2 - 2 * r * x * theta
    dr = num / (np.sqrt(r ** 2 + num) + r)
    return (np.exp(-2j * np.pi * dr / lam) / np.sqrt(n_ant)).astype(np.complex128)


def farfield_steering(theta, n_ant: int, spacing_wl: float = 0.5) -> np.ndarray:
    """Unit-norm planar steering vector exp(j 2 pi spacing delta_n theta) / sqrt(N): [..., n_ant]."""
    theta = np.asarray(theta, float)[..., None]
    delta = np.arange(n_ant) - (n_ant - 1) / 2
    return np.exp(2j * np.pi * spacing_wl * delta * theta) / np.sqrt(n_ant)


def draw_paths(rng: np.random.Generator, cfg: NearFieldConfig, batch: int) -> dict:
    """Random path parameters for ``batch`` users: theta (sin of direction), r (m), tau (s),
    gain g ~ CN(0, 1); each [batch, L]. Path 0 is the user itself."""
    L = cfg.n_paths
    ang = np.deg2rad(rng.uniform(*cfg.angle_range_deg, size=(batch, L)))
    r = rng.uniform(*cfg.r_range_m, size=(batch, L))
    px, py = r * np.sin(ang), r * np.cos(ang)          # array along x, broadside = +y
    dist_user = np.hypot(px - px[:, :1], py - py[:, :1])  # 0 for the LOS path
    tau = (r + dist_user) / C0
    g = (rng.standard_normal((batch, L)) + 1j * rng.standard_normal((batch, L))) / np.sqrt(2)
    return {"theta": np.sin(ang), "r": r, "tau": tau, "gain": g}


def channel_from_paths(paths: dict, cfg: NearFieldConfig) -> np.ndarray:
    """H complex64 [batch, N, K] from path parameters (see module docstring)."""
    theta, r, tau, g = (np.asarray(paths[k]) for k in ("theta", "r", "tau", "gain"))
    B, L = theta.shape
    df = cfg.subcarrier_offsets_hz()                                   # [K]
    phase = np.exp(-2j * np.pi * tau[..., None] * df)                  # [B, L, K]
    coef = np.sqrt(cfg.n_ant / L) * g[..., None] * phase               # [B, L, K]
    if cfg.beam_squint:
        lam = C0 / (cfg.fc_hz + df)                                    # [K]
        if cfg.far_field:
            sp_wl = cfg.spacing_m / lam
            delta = np.arange(cfg.n_ant) - (cfg.n_ant - 1) / 2
            a = np.exp(2j * np.pi * sp_wl[None, None, :, None] * delta * theta[..., None, None])
            a /= np.sqrt(cfg.n_ant)                                    # [B, L, K, N]
        else:
            a = nearfield_steering(theta[..., None], r[..., None], cfg.n_ant, cfg.spacing_m,
                                   lam)                                # [B, L, K, N]
        H = np.einsum("blk,blkn->bnk", coef, a)
    else:
        if cfg.far_field:
            a = farfield_steering(theta, cfg.n_ant, cfg.spacing_wl)    # [B, L, N]
        else:
            a = nearfield_steering(theta, r, cfg.n_ant, cfg.spacing_m, cfg.wavelength_m)
        H = np.einsum("blk,bln->bnk", coef, a)
    return H.astype(np.complex64)


def generate_channels(rng: np.random.Generator, cfg: NearFieldConfig, batch: int,
                      return_paths: bool = False):
    """``batch`` independent user channels H complex64 [batch, N, K] (and their paths)."""
    paths = draw_paths(rng, cfg, batch)
    H = channel_from_paths(paths, cfg)
    return (H, paths) if return_paths else H


def random_combiners(rng: np.random.Generator, n_pilots: int, n_rf: int, n_ant: int,
                     batch: int | None = None, phase_bits: int | None = None) -> np.ndarray:
    """Random-phase analog combiners exp(j phi) / sqrt(N), one per pilot symbol:
    complex64 [(batch,) P, N_RF, N]. ``phase_bits`` quantises phi (1 bit: +-1/sqrt(N))."""
    shape = (n_pilots, n_rf, n_ant) if batch is None else (batch, n_pilots, n_rf, n_ant)
    if phase_bits is None:
        phi = rng.uniform(0, 2 * np.pi, size=shape)
    else:
        phi = 2 * np.pi * rng.integers(0, 2 ** phase_bits, size=shape) / 2 ** phase_bits
    return (np.exp(1j * phi) / np.sqrt(n_ant)).astype(np.complex64)


def observe(rng: np.random.Generator, H: np.ndarray, W: np.ndarray, noise_var) -> np.ndarray:
    """Combined pilot observations Y = W_p (h + n_p): H [B, N, K], W [B or 1, P, N_RF, N] (or
    [P, N_RF, N]), noise_var scalar or [B] (per antenna, before combining). -> [B, P, N_RF, K]."""
    H = np.asarray(H)
    W = np.asarray(W)
    if W.ndim == 3:
        W = W[None]
    B, N, K = H.shape
    P = W.shape[1]
    nv = np.broadcast_to(np.asarray(noise_var, float), (B,))
    n = (rng.standard_normal((B, P, N, K)) + 1j * rng.standard_normal((B, P, N, K)))
    n *= np.sqrt(nv / 2)[:, None, None, None]
    Y = np.einsum("bprn,bpnk->bprk", W, H[:, None] + n)
    return Y.astype(np.complex64)


@dataclasses.dataclass
class UplinkPilots:
    """One simulated batch of frames: every frame has its own combiner sequence, shared by its
    users. H [F, M, N, K], W [F, P, N_RF, N], Y [F, M, P, N_RF, K], noise_var (scalar)."""
    H: np.ndarray
    W: np.ndarray
    Y: np.ndarray
    noise_var: float
    paths: dict

    def per_user(self):
        """Flatten frames x users: H [F*M, N, K], W [F*M, P, N_RF, N], Y [F*M, P, N_RF, K]."""
        F, M = self.H.shape[:2]
        W = np.broadcast_to(self.W[:, None], (F, M, *self.W.shape[1:]))
        return (self.H.reshape(F * M, *self.H.shape[2:]), W.reshape(F * M, *self.W.shape[1:]),
                self.Y.reshape(F * M, *self.Y.shape[2:]))


def uplink_pilots(rng: np.random.Generator, cfg: NearFieldConfig, n_pilots: int, snr_db: float,
                  n_frames: int = 1, phase_bits: int | None = None) -> UplinkPilots:
    """Simulate ``n_frames`` frames of the multi-user uplink pilot phase (see module docstring)."""
    M = cfg.n_users
    H, paths = generate_channels(rng, cfg, n_frames * M, return_paths=True)
    W = random_combiners(rng, n_pilots, cfg.n_rf, cfg.n_ant, batch=n_frames, phase_bits=phase_bits)
    nv = 10 ** (-snr_db / 10)
    Wu = np.repeat(W, M, axis=0)
    Y = observe(rng, H, Wu, nv)
    K, N = cfg.n_subcarriers, cfg.n_ant
    return UplinkPilots(H=H.reshape(n_frames, M, N, K), W=W,
                        Y=Y.reshape(n_frames, M, n_pilots, cfg.n_rf, K), noise_var=nv,
                        paths={k: v.reshape(n_frames, M, -1) for k, v in paths.items()})
