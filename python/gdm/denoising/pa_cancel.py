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
from ..ofdm.modem import ifft_occupied
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
                 cpe: bool = False, knots=KNOTS, shrink: bool = True,
                 decoder: bool = True, decoder_iter: int = 20):
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
        self.shrink = bool(shrink)
        self.decoder, self.decoder_iter = bool(decoder), int(decoder_iter)
        s = spec
        self.rms = float(np.sqrt(s.n_occ / s.fft_len) * s.tx_amplitude)
        # the simulator sets its back-off from the RMS of one full-power stream
        self._known = known_pa(pa, self.backoff_db, float(np.sqrt(s.n_occ / s.fft_len))) if pa != "blind" else None

    # ---- grid <-> time (unitary FFTs, as ofdm.modem) ---------------------------------------
    def _to_time(self, grid):
        return ifft_occupied(grid, self.spec, np.complex128) * self.spec.tx_amplitude

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

    def _decoder_symbols(self, xc, w):
        """Soft symbols (mean, variance) [B, n_tx, S, K] from the LDPC decoder's extrinsic bit
        beliefs on the current symbols xc with variance w (the decode_batch bit order); frames
        that decode take their decisions as certain."""
        from ..ofdm import fec
        from ..ofdm.modem import extract_data

        s = self.spec
        B, k = xc.shape[0], s.bits_per_symbol
        xd = extract_data(xc, s).transpose(0, 2, 1).reshape(B, -1)
        wd = extract_data(w, s).transpose(0, 2, 1).reshape(B, -1)
        llr = qam.soft_demap(xd, wd, s.modulation).reshape(B, -1)
        _, ok, post = fec.code(s.bits_per_frame).decode(llr, max_iter=self.decoder_iter, posterior=True)
        ext = np.where(ok[:, None], np.sign(post) * 50.0, np.clip(post - llr, -30, 30)).reshape(B, -1, k)
        pam, table = qam._axis(s.modulation)
        half = k // 2 if k > 1 else 1
        mean, var = np.zeros(ext.shape[:2], complex), np.zeros(ext.shape[:2])
        for axis, unit in enumerate((1.0, 1j)[: 2 if k > 1 else 1]):
            L = ext[..., axis * half:(axis + 1) * half].astype(np.float64)  # [B, n, half]
            # log P(level) = sum over its bits of log P(bit); LLR > 0 means bit 0
            lp = -np.logaddexp(0, np.where(table[None, None], 1, -1) * L[:, :, None, :]).sum(-1)
            p = np.exp(lp - lp.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            m = p @ pam
            mean += unit * m
            var += p @ pam.astype(np.float64) ** 2 - m ** 2
        grid_m = np.zeros(xc.shape, complex)
        grid_v = np.zeros(xc.shape)
        n_tx = self.n_tx
        grid_m[..., s.data_mask] = mean.reshape(B, -1, n_tx).transpose(0, 2, 1)
        grid_v[..., s.data_mask] = var.reshape(B, -1, n_tx).transpose(0, 2, 1)
        return grid_m, grid_v

    def _denoise(self, X, V):
        s, d = self.spec, self.spec.data_mask
        X0 = (cpe_correct(X, V, s, 3, True) if self.cpe else X).astype(np.complex128)
        B, T = X0.shape[:2]
        v = V.astype(np.float64)
        xc, vn, D = X0.copy(), v.copy(), np.zeros((B, T, 1, 1))
        info = {"method": self.name, "pa": self.pa}
        for it in range(self.iterations):
            if self.decoder and it > 0:
                M, VAR = self._decoder_symbols(xc, vn + D)
            else:
                M, VAR = soft_symbols(xc, vn + D, s.modulation)
            for tx in range(T):
                pilots = s.pilot_values(tx)
                m, var, x0 = M[:, tx], VAR[:, tx], X0[:, tx]
                grid = np.where(d, m, pilots)
                hard = np.where(d, qam.nearest_points(xc[:, tx], s.modulation), pilots)
                weight = d / (vn[:, tx] + D[:, tx])
                model, Fh = self._pa_model(hard, x0, weight)
                # the frame's gain: Bussgang gain of the model on the decided grid; the
                # distortion of the soft grid is what its own Bussgang gain leaves
                g = _bussgang(Fh, hard)
                F = model(grid)
                dist = F - _bussgang(F, grid)[:, None, None] * grid
                if self.shrink:
                    # how much of the regenerated distortion the data confirm: regression of
                    # what the soft symbols leave unexplained on it (0 where the decisions are
                    # too poor to predict the distortion, ~1 where they are right)
                    r = x0 - g[:, None, None] * grid
                    beta = np.real(np.sum(weight * r * np.conj(dist), (1, 2))) / np.maximum(
                        np.sum(weight * np.abs(dist) ** 2, (1, 2)), 1e-30)
                    dist = dist * np.clip(beta, 0.0, 1.0)[:, None, None]
                c = (x0 - dist) / g[:, None, None]
                if self.cpe:  # the cleaned symbols see the residual common phase better
                    c = cpe_correct(c[:, None], (vn[:, tx] + D[:, tx])[:, None], s, 1, False)[:, 0]
                xc[:, tx] = np.where(d, c, x0)
                vn[:, tx] = v[:, tx] / np.abs(g[:, None, None]) ** 2
                # what the uncertain symbols leave of the predicted distortion
                D0 = np.mean(np.abs(dist[:, d]) ** 2, 1) / np.abs(g) ** 2
                D[:, tx] = (D0 * np.mean(var[:, d], 1))[:, None, None]
                info[f"distortion_tx{tx}"], info[f"gain_tx{tx}"] = D0, g
        self.last_info = info
        return np.where(d, xc, X0).astype(np.complex64), np.where(d, vn + D, v).astype(np.float32)
