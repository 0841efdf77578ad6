"""Decision-aided cancellation of transmitter PA distortion: ``denoising.make("pa_cancel", spec,
n_tx, pa="blind", backoff_db=6.0, iterations=3, cpe=False)``.

After the FFT the in-band PA distortion looks like Gaussian noise on every resource element
(Bussgang), so no per-RE operation removes it; but it is a deterministic function of all the
symbols of the OFDM symbol. Per stream and iteration:
1. soft symbol estimates (posterior means of the constellation points under the current
   noise + residual-distortion variance; pilots are known);
2. regenerate the transmitted OFDM symbols (IFFT of the whole grid, the CP plays no part);
3. the PA model: blind (a complex gain table over amplitude fitted by least squares between
   the regenerated signal and the equalized symbols on every data RE, pa_model.fit_gain_table),
   or the simulator's Saleh / Rapp at a given back-off; a per-frame complex scale absorbs
   what the channel estimate absorbed of the PA's gain;
4. FFT; the predicted distortion is the part of the PA output orthogonal to the regenerated
   grid (d = F(s) - g s with the frame's Bussgang gain g); it does not depend on the channel
   in the equalized domain, so subtract it and divide by g;
5. variance: noise / |g|^2 plus the residual distortion, which the symbol uncertainty leaves
   (predicted distortion power x mean posterior symbol variance): the distortion is the
   same on every RE while the noise follows the channel, so plain demapping, which sees only
   the noise, trusts strong carriers too much.
``cpe``: tracking common-phase-error correction first (ofdm.compensation.cpe_correct), and a
per-symbol phase refinement on the cleaned symbols in every iteration. Pilot REs pass through.
"""
from __future__ import annotations

import numpy as np

from ..frame import FrameSpec
from ..ofdm import qam
from ..ofdm.compensation import cpe_correct
from .base import SymbolDenoiser, register
from .pa_model import KNOTS, MODELS, fit_gain_table, hat_weights, known_pa


def soft_symbols(z: np.ndarray, w: np.ndarray, modulation: str) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance of square-QAM points given observations z with complex
    Gaussian noise variance w (each axis on its own PAM)."""
    pam, _ = qam._axis(modulation)
    ww = np.maximum(np.asarray(w, np.float64), 1e-9)[..., None]
    mean, var = [], np.zeros(z.shape)
    for u in (z.real, z.imag):
        lg = -(u[..., None].astype(np.float64) - pam) ** 2 / ww
        p = np.exp(lg - lg.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        m = p @ pam
        mean.append(m)
        var += p @ pam.astype(np.float64) ** 2 - m ** 2
    if modulation == "bpsk":
        return mean[0].astype(np.complex128), var
    return mean[0] + 1j * mean[1], var


def _bussgang(F, grid):
    """Per-frame linear gain of F on grid [B, S, K] (least squares over the frame)."""
    return np.sum(F * np.conj(grid), (1, 2)) / np.maximum(np.sum(np.abs(grid) ** 2, (1, 2)), 1e-30)


@register("pa_cancel")
class PACanceller(SymbolDenoiser):
    name = "pa_cancel"

    def __init__(self, spec: FrameSpec, pa: str = "blind", backoff_db: float = 6.0, iterations: int = 3,
                 cpe: bool = False, knots=KNOTS):
        super().__init__(spec)
        if pa not in MODELS:
            raise ValueError(f"pa_cancel: unknown PA model {pa!r}; valid: {', '.join(MODELS)}")
        if not np.isfinite(backoff_db) or not -10.0 <= backoff_db <= 40.0:
            raise ValueError(f"pa_cancel: backoff_db must be a finite number of dB in [-10, 40], got {backoff_db}")
        if int(iterations) != iterations or not 1 <= iterations <= 10:
            raise ValueError(f"pa_cancel: iterations must be an integer in [1, 10], got {iterations}")
        k = np.asarray(knots, float)
        if k.ndim != 1 or k.size < 3 or k[0] != 0 or not np.all(np.diff(k) > 0):
            raise ValueError("pa_cancel: knots must be at least 3 ascending amplitudes starting at 0")
        self.pa, self.backoff_db, self.iterations, self.cpe = pa, float(backoff_db), int(iterations), bool(cpe)
        self.knots = tuple(k)
        s = spec
        self.rms = float(np.sqrt(s.n_occ / s.fft_len) * s.tx_amplitude)
        # the simulator sets its back-off from the RMS of one full-power stream
        self._known = known_pa(pa, self.backoff_db, float(np.sqrt(s.n_occ / s.fft_len))) if pa != "blind" else None

    # ---- grid <-> time (unitary FFTs, as ofdm.modem) ---------------------------------------
    def _to_time(self, grid):
        s = self.spec
        full = np.zeros((*grid.shape[:-1], s.fft_len), np.complex128)
        full[..., s.occupied_bins] = grid
        return np.fft.ifft(np.fft.ifftshift(full, axes=-1), norm="ortho", axis=-1) * s.tx_amplitude

    def _to_grid(self, t):
        s = self.spec
        f = np.fft.fftshift(np.fft.fft(t, norm="ortho", axis=-1), axes=-1)
        return f[..., s.occupied_bins] / s.tx_amplitude

    def _pa_model(self, hard, target, weight):
        """The PA as a function of grids: F(grid) [B, S, K], the PA output through the FFT in
        the equalized domain. Blind: the gain table is fitted on the hard decisions ``hard``;
        then a per-frame complex scale maps F(hard) onto ``target`` (what the channel estimate
        absorbed of the PA's gain), so the soft grids later see the same model."""
        if self._known is not None:
            def pa(t):
                return self._known(t).astype(np.complex128)
        else:
            th = self._to_time(hard)
            hw = hat_weights(np.abs(th) / self.rms, self.knots)  # [B, S, N, J]
            basis = self._to_grid(np.moveaxis(th[..., None] * hw, -1, 0))  # [J, B, S, K]
            c = self.gain_table = fit_gain_table(basis, target, weight)

            def pa(t):
                return t * (hat_weights(np.abs(t) / self.rms, self.knots) @ c)
        Fh = self._to_grid(pa(self._to_time(hard)))
        a = np.sum(weight * target * np.conj(Fh), (1, 2)) / np.maximum(np.sum(weight * np.abs(Fh) ** 2, (1, 2)), 1e-30)
        a = a[:, None, None]
        return (lambda grid: a * self._to_grid(pa(self._to_time(grid)))), a * Fh

    def _denoise(self, X, V):
        s, d = self.spec, self.spec.data_mask
        X0 = cpe_correct(X, V, s, 3, True) if self.cpe else X
        Xo, Vo = X0.copy(), V.copy()
        info = {"method": self.name, "pa": self.pa, "distortion": [], "gain": []}
        for tx in range(self.n_tx):
            x0, v = X0[:, tx].astype(np.complex128), V[:, tx].astype(np.float64)
            pilots = s.pilot_values(tx)
            xc, vn, D = x0, v, np.zeros((len(x0), 1, 1))
            for _ in range(self.iterations):
                m, var = soft_symbols(xc, vn + D, s.modulation)
                grid = np.where(d, m, pilots)
                hard = np.where(d, qam.nearest_points(xc, s.modulation), pilots)
                weight = d / (vn + D)
                model, Fh = self._pa_model(hard, x0, weight)
                # the frame's gain: Bussgang gain of the model on the decided grid; the
                # distortion of the soft grid is what its own Bussgang gain leaves
                g = _bussgang(Fh, hard)
                F = model(grid)
                dist = F - _bussgang(F, grid)[:, None, None] * grid
                xc = (x0 - dist) / g[:, None, None]
                if self.cpe:  # the cleaned symbols see the residual common phase better
                    xc = cpe_correct(xc[:, None], (vn + D)[:, None], s, 1, False)[:, 0]
                vn = v / np.abs(g[:, None, None]) ** 2
                # what the uncertain symbols leave of the predicted distortion
                D0 = np.mean(np.abs(dist[:, d]) ** 2, 1) / np.abs(g) ** 2
                D = (D0 * np.mean(var[:, d], 1))[:, None, None]
            info["distortion"].append(D0)
            info["gain"].append(g)
            Xo[:, tx] = np.where(d, xc, X0[:, tx])
            Vo[:, tx] = np.where(d, vn + D, V[:, tx])
        self.last_info = info
        return Xo.astype(np.complex64), Vo.astype(np.float32)
