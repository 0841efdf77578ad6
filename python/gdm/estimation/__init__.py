"""Channel estimators, selectable by name: ``estimation.make(name, spec, n_rx, n_tx)``."""
from . import bank, diffusion, interp, lmmse  # noqa: F401  (registration)
from .base import Estimator, estimate_noise_var, make, names, pilot_ls, register

__all__ = ["Estimator", "make", "names", "register", "pilot_ls", "estimate_noise_var"]
