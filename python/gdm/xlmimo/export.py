"""ONNX export of the XL-MIMO channel prior with its metadata, and metadata checks.

    gr-gdm export --kind xlmimo --ckpt out/train/prior.pt --out onnx_models/gdm_xlmimo_prior.onnx \
        [--eval-csv out/xlmimo/xlmimo.csv ...]          # also updates SHA256SUMS beside it

Besides the training facts, the metadata holds a ``test_point`` (NMSE of the exported model at
P = 8, 10 dB on a fixed held-out seed, measured through onnxruntime; the test suite re-measures
it) and, with --eval-csv, the held-out NMSE-vs-overhead tables at 10 dB.

Graph: inputs ``x`` float32 [B, 2, N, K] (noisy channel, real/imag, antenna, subcarrier) and
``sigma`` float32 [B] (noise standard deviation per complex entry); output ``h0`` float32
[B, 2, N, K] (denoised channel, Tweedie estimate). B is dynamic, N and K are the trained ones
(the graph holds their DFT matrices); opset 17.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

GDM_KIND = "xlmimo_prior"


def export_onnx(ckpt, path, extra_meta: dict | None = None, opset: int = 17) -> dict:
    """Write the prior in ``ckpt`` (dict or checkpoint path) to ``path``; returns the metadata."""
    import onnx
    import torch

    from .training import load_model
    model, cfg, ck = load_model(ckpt)
    N, K = cfg.n_ant, cfg.n_subcarriers
    x = torch.randn(2, 2, N, K)
    s = torch.tensor([0.1, 1.0])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (x, s), str(path), input_names=["x", "sigma"], output_names=["h0"],
                      dynamic_axes={"x": {0: "batch"}, "sigma": {0: "batch"}, "h0": {0: "batch"}},
                      opset_version=opset, dynamo=False)
    meta = {
        "gdm_kind": GDM_KIND,
        "gdm_version": "1",
        "channel_config": cfg.to_json(),
        "inputs": json.dumps({"x": ["batch", 2, N, K], "sigma": ["batch"]}),
        "outputs": json.dumps({"h0": ["batch", 2, N, K]}),
        "layout": "x[b, 0/1 = real/imag, antenna, subcarrier]; channel normalised to E|h|^2 = 1",
        "noise_model": "x = h + sigma * CN(0, 1) per complex entry; h0 ~ E[h | x] (EDM preconditioning)",
        "sigma_range": json.dumps(ck["sigma_range"]),
        "architecture": json.dumps(ck["arch"]),
        "n_params": str(ck["n_params"]),
        "training_seed": str(ck["seed"]),
        "training_channels": str(ck["channels_seen"]),
        "training_steps": str(ck["steps"]),
        "training_cpu_minutes": f"{ck['minutes']:.1f}",          # one core (torch threads = 1)
        # a fine-tuned prior: the run it continued (seed, steps, channels, CPU minutes), or null
        "training_init": json.dumps(ck.get("init")),
        "training_r_range_m": json.dumps(list(cfg.r_range_m)),
        "heldout_denoise_nmse_db": json.dumps({str(k): round(v, 2) for k, v in ck["val_nmse_db"].items()}),
        "sampler": json.dumps({"method": "refine", "init": "sigw", "n_steps": 4, "n_samples": 4, "scale": 1.6,
                               "ratio": 0.3, "zeta": 1.0, "sigma_floor": ck["sigma_range"][0],
                               "note": "annealed posterior samples from the SIGW estimate, sigma from "
                                       "scale * sqrt(SIGW gain error variance) down to ratio times that, "
                                       "averaged (posterior mean); 16 network calls per user, batched"}),
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": str(opset),
    }
    meta.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (extra_meta or {}).items()})
    m = onnx.load(str(path))
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(path))
    return meta


def set_metadata(path, extra: dict) -> None:
    """Add or replace metadata entries (the graph is unchanged)."""
    import onnx
    m = onnx.load(str(path))
    props = {p.key: p.value for p in m.metadata_props}
    props.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in extra.items()})
    del m.metadata_props[:]
    for k, v in props.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(path))


def measure_test_point(path, n_pilots: int = 8, snr_db: float = 10.0, n_frames: int = 1,
                       seed: int = 24242) -> dict:
    """Diffusion NMSE (mean per channel, dB) of the ONNX prior at one held-out operating point."""
    from ..sim.nearfield import NearFieldConfig, uplink_pilots
    from .sampling import DiffusionEstimator
    cfg = NearFieldConfig.from_json(read_metadata(path)["channel_config"])
    up = uplink_pilots(np.random.default_rng(seed), cfg, n_pilots, snr_db, n_frames)
    H, W, Y = up.per_user()
    from .baselines import sigw
    init = sigw(Y, W, up.noise_var, cfg, return_var=True)
    Hd = DiffusionEstimator(str(path)).estimate(Y, W, up.noise_var, init=init)

    def db(Hh):
        nm = np.mean(np.sum(np.abs(Hh - H) ** 2, axis=(1, 2)) / np.sum(np.abs(H) ** 2, axis=(1, 2)))
        return round(float(10 * np.log10(nm)), 2)
    return {"n_pilots": n_pilots, "snr_db": snr_db, "n_frames": n_frames, "seed": seed,
            "nmse_db": db(Hd), "sigw_nmse_db": db(init[0])}


def eval_tables(csv_paths, snr_db: float = 10.0) -> dict:
    """{scenario: {estimator: {pilot_overhead: nmse_db}}} at one SNR from evaluation CSVs."""
    import csv
    out: dict = {}
    for p in csv_paths:
        with open(p) as fh:
            for r in csv.DictReader(fh):
                if float(r["snr_db"]) == snr_db and r["metric"] == "nmse_db":
                    out.setdefault(r["scenario"], {}).setdefault(r["estimator"], {})[
                        r["pilot_overhead"]] = float(r["value"])
    return out


def check_parity(ckpt, path, n: int = 3, seed: int = 0) -> float:
    """Max abs difference between torch and onnxruntime outputs on random inputs."""
    import torch

    from .sampling import OnnxDenoiser, TorchDenoiser
    from .training import load_model
    from ..sim.nearfield import generate_channels
    model, cfg, _ = load_model(ckpt)
    rng = np.random.default_rng(seed)
    H = generate_channels(rng, cfg, n)
    sig = np.geomspace(0.05, 2.0, n)
    X = H + sig[:, None, None] * (rng.standard_normal(H.shape) + 1j * rng.standard_normal(H.shape)) / np.sqrt(2)
    torch.set_num_threads(1)
    a = TorchDenoiser(model)(X, sig)
    b = OnnxDenoiser(str(path))(X, sig)
    return float(np.max(np.abs(a - b)))


def read_metadata(path) -> dict:
    import onnx
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def validate_metadata(meta: dict, cfg=None, n_ant: int | None = None) -> None:
    """Refuse a model that is not an XL-MIMO prior or does not fit the array and band of ``cfg``
    (a NearFieldConfig; or just ``n_ant``). The message says what differs and what to do. The
    network's shapes fix N and K, and it learned the delay structure for one subcarrier spacing
    and the near-field phase for one carrier and element spacing, so those must match too."""
    from ..sim.nearfield import NearFieldConfig
    if meta.get("gdm_kind") != GDM_KIND:
        raise ValueError(f"model gdm_kind is {meta.get('gdm_kind')!r}, expected {GDM_KIND!r}: "
                         "pass an XL-MIMO prior (e.g. onnx_models/gdm_xlmimo_prior.onnx)")
    trained = NearFieldConfig.from_json(meta["channel_config"])
    want = {"n_ant": n_ant} if cfg is None else {k: getattr(cfg, k) for k in CHECKED_FIELDS}
    diff = [f"{k}={getattr(trained, k)!r} (model) vs {k}={v!r} (here)" for k, v in want.items()
            if v is not None and getattr(trained, k) != v]
    if diff:
        raise ValueError("the XL-MIMO prior does not fit this array/band: " + "; ".join(diff)
                         + ". Use matching parameters or train a prior for them "
                         "(python -m gnuradio.gdm.xlmimo.training --cfg ...)")


CHECKED_FIELDS = ("n_ant", "n_subcarriers", "spacing_wl", "fc_hz", "bandwidth_hz")


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="gr-gdm export --kind xlmimo", description="export the XL-MIMO prior to ONNX")
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--eval-csv", nargs="*", default=[],
                    help="evaluation CSVs whose 10 dB tables go into the metadata")
    ap.add_argument("--no-sums", action="store_true", help="do not update SHA256SUMS beside the file")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from ..runtime.checksums import SUMS_NAME, read_sums
    sums = Path(a.out).parent / SUMS_NAME

    def write_sum(digest):
        entries = read_sums(sums) if sums.exists() else {}
        entries.pop(Path(a.out).name, None)
        if digest:
            entries[Path(a.out).name] = digest
        sums.write_text("".join(f"{h}  {n}\n" for n, h in sorted(entries.items())))

    meta = export_onnx(a.ckpt, a.out)
    if not a.no_sums and sums.exists():
        write_sum(None)          # the old checksum would make the sessions below refuse the new file
    err = check_parity(a.ckpt, a.out)
    extra = {"test_point": measure_test_point(a.out), "torch_onnx_max_abs_diff": f"{err:.2e}"}
    if a.eval_csv:
        extra["heldout_nmse_db_10db"] = eval_tables(a.eval_csv)
    set_metadata(a.out, extra)
    if not a.no_sums:
        write_sum(sha256(a.out))
    print(json.dumps({"out": a.out, "bytes": Path(a.out).stat().st_size, "sha256": sha256(a.out),
                      "torch_onnx_max_abs_diff": err, "n_params": meta["n_params"],
                      "test_point": extra["test_point"]}))


if __name__ == "__main__":
    main()
