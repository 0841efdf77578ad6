"""Site adaptation of a diffusion-estimator model: pilots in, a new ONNX file out.

``adapt(obs, model=None)``: split the observations (the last ``holdout`` fraction is held out),
fit the site prior to the rest (``site_prior``), re-weight the extended bank by EM on their pilot
likelihoods, validate on the held-out frames (``guard``), and return an ``Adaptation``.
``export(adaptation, path)`` writes the adapted model: the base model's graph and weights
byte-for-byte (the network is not retrained), its metadata, and
- ``conditioning``: the bank extended with the site hypotheses and the fitted prior weights
  (what the diffusion estimator builds its Gaussian-mixture posterior from);
- ``adaptation``: what it was adapted from (file, SHA-256), on which data (source, frames,
  held-out frames), the fitted site summary, the guard's report, timings and the command;
- the base's ``heldout_nmse_db`` renamed ``base_heldout_nmse_db`` (they describe the base).
The base model is never written to.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..estimation.bank import BankGrid, MixturePosterior
from .guard import GuardReport, validate
from .observations import PilotObservations
from .site_prior import SiteFit, em_log_weights, fit_site

FORMAT = "1"


@dataclasses.dataclass
class Adaptation:
    base_model: Path
    base_sha256: str | None
    base_grid: BankGrid
    grid: BankGrid
    top: int
    site: SiteFit
    guard: GuardReport
    source: dict
    n_train: int
    n_heldout: int
    seconds: dict

    @property
    def accepted(self) -> bool:
        return self.guard.accepted

    def site_weight(self) -> float:
        """Prior mass of the hypotheses that involve a site component."""
        T, F = self.grid.n_t, self.grid.n_f
        w = np.exp(np.asarray(self.grid.log_prior)).reshape(T, F)
        nt, nf = len(self.grid.site_t), len(self.grid.site_f)
        base = w[:T - nt, :F - nf].sum()
        return float(1 - base / w.sum())

    def adapted_parameters(self) -> dict:
        """What adaptation changed, counted: the rest of the model (the network) is the base's."""
        n_taps, n_fl = int(self.site.delays.size), len(self.site.floors)
        n_w = len(self.grid.log_prior or ())
        return {"delay_profile_powers": n_taps, "floor_levels": n_fl, "time_correlation": 2,
                "mixture_weights": n_w, "total": n_taps + n_fl + 2 + n_w, "network_weights": 0}

    def summary(self) -> dict:
        return {"accepted": self.accepted, "base_model": str(self.base_model), "frames_adapt": self.n_train,
                "frames_heldout": self.n_heldout, "site": self.site.summary(),
                "site_prior_weight": round(self.site_weight(), 4), "adapted_parameters": self.adapted_parameters(),
                "guard": self.guard.to_dict(),
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()}, "source": self.source}


def _base(model):
    from ..runtime import OnnxModel
    from ..runtime.session import shipped_model

    path = shipped_model() if model is None else Path(model)
    m = OnnxModel(path, device="cpu", kind="estimator")
    bank = json.loads(m.metadata["conditioning"])["bank"]
    return path, m.sha256, BankGrid.from_dict(bank).base(), int(bank.get("top", 64)), m.metadata


def adapt(obs: PilotObservations, model=None, holdout: float = 0.25, floor: float = 0.05,
          em_iters: int = 50, margin_db: float = 0.0, min_z: float = 1.0, heldout: PilotObservations | None = None,
          progress: Callable[[str], None] | None = None) -> Adaptation:
    """Fit the site prior to ``obs`` (all of it when ``heldout`` frames are given separately,
    else all but the last ``holdout`` fraction) and validate it on the held-out frames."""
    say = progress or (lambda s: None)
    t0 = time.perf_counter()
    path, sha, base_grid, top, meta = _base(model)
    from ..runtime.session import validate_metadata

    validate_metadata(meta, obs.spec, obs.n_rx, obs.spec.n_tx, "estimator", path)
    train, held = (obs, heldout) if heldout is not None else obs.split(holdout)
    say(f"fitting the site prior to {train.n_frames} frames ({train.n_frames * train.n_rx * obs.spec.n_tx} links)")
    site = fit_site(train)
    t1 = time.perf_counter()
    grid = base_grid.with_site(site.profiles(), [(site.time.doppler, site.time.shift)])
    say(f"mixture weights by EM over {grid.n_t * grid.n_f} hypotheses")
    post = MixturePosterior(obs.spec, grid, top)
    ll = []
    for tx in range(obs.spec.n_tx):
        pat = post.pattern(obs.spec.pilot_mask(tx))
        ls, nv = train.links(tx, pat.rows, pat.cols)
        ll.append(post.loglik(ls, nv, pat))
    grid = grid.with_site(grid.site_f, grid.site_t, em_log_weights(np.concatenate(ll), em_iters, floor))
    t2 = time.perf_counter()
    say(f"guard: shipped vs adapted prior on {held.n_frames} held-out frames")
    report = validate(base_grid, grid, held, top, margin_db, min_z)
    t3 = time.perf_counter()
    return Adaptation(path, sha, base_grid, grid, top, site, report, dict(obs.source), train.n_frames,
                      held.n_frames, {"fit": t1 - t0, "em": t2 - t1, "guard": t3 - t2, "total": t3 - t0})


def export(ad: Adaptation, out, command: str | None = None, force: bool = False) -> Path:
    """Write the adapted model to ``out`` (refuses a rejected adaptation unless ``force``, and
    never overwrites the base model). Updates a SHA256SUMS beside ``out`` if one lists it."""
    import onnx

    from ..runtime.checksums import SUMS_NAME, read_sums, sha256_file

    out = Path(out)
    if not ad.accepted and not force:
        raise ValueError(f"adaptation rejected by the guard ({ad.guard.to_dict()['risk_adapted_db']} dB vs "
                         f"{ad.guard.to_dict()['risk_shipped_db']} dB held-out risk); nothing written - the "
                         "shipped model stays in use")
    if out.resolve() == Path(ad.base_model).resolve():
        raise ValueError(f"{out} is the base model; write the adapted model to a new file")
    proto = onnx.load(str(ad.base_model))
    meta = {p.key: p.value for p in proto.metadata_props}
    cond = json.loads(meta["conditioning"])
    cond["bank"] = {**ad.grid.to_dict(), "top": ad.top}
    info = {"format": FORMAT, "adapted_from": {"file": Path(ad.base_model).name, "sha256": ad.base_sha256},
            "method": "site prior from received pilots: delay-power profile (NNLS on noise-corrected pilot "
                      "moments) x Jakes/shifted-Jakes time correlation, mixture weights by EM on pilot "
                      "likelihoods; network weights unchanged",
            "data": ad.source, "frames_adapt": ad.n_train, "frames_heldout": ad.n_heldout,
            "site": ad.site.summary(), "site_prior_weight": round(ad.site_weight(), 4),
            "adapted_parameters": ad.adapted_parameters(),
            "guard": ad.guard.to_dict(), "seconds": {k: round(v, 3) for k, v in ad.seconds.items()},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if command:
        info["command"] = command
    new = {"conditioning": json.dumps(cond), "adaptation": json.dumps(info, default=str)}
    if "heldout_nmse_db" in meta:  # the base model's numbers, not this model's: keep them, renamed
        new["base_heldout_nmse_db"] = meta["heldout_nmse_db"]
    _set_metadata(proto, new, drop=("heldout_nmse_db",))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(out)
    sums = out.parent / SUMS_NAME
    if sums.exists() and out.name in read_sums(sums):
        entries = read_sums(sums)
        entries[out.name] = sha256_file(out)
        sums.write_text("".join(f"{h}  {n}\n" for n, h in sorted(entries.items())))
    return out


def _set_metadata(model, meta: dict[str, str], drop=()) -> None:
    """models.export.set_metadata without importing torch (and ``drop`` keys removed)."""
    keep = [p for p in model.metadata_props if p.key not in meta and p.key not in drop]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=str(v))
