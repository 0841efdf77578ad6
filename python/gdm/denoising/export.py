"""ONNX export of a trained symbol denoiser with the metadata runtime.OnnxModel validates
(gdm_kind "denoiser", frame spec, modulations, shapes, noise schedule, training), parity check
against torch, SHA256SUMS update. Same conventions as the estimator's models/export.py."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from ..models.export import FORMAT_VERSION, OPSET, read_metadata, set_metadata  # noqa: F401 (re-export)
from .features import N_COND, N_GLOBAL
from .network import SymbolNet, n_params
from .train import DenoiserTrainConfig, load_checkpoint, model_from_checkpoint

INPUTS = ("y", "logv", "cond", "glob")
OUTPUT = "out"


def example_inputs(spec, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    S, K = spec.n_sym, spec.n_occ
    cond = torch.randn(batch, N_COND, S, K, generator=g) * 0.5
    cond[:, 9] = torch.from_numpy(spec.data_mask.astype(np.float32))
    glob = torch.zeros(batch, N_GLOBAL)
    glob[:, 1] = 1.0
    glob[:, 3:] = torch.randn(batch, 2, generator=g)
    return (torch.randn(batch, 2, S, K, generator=g), -3 + torch.randn(batch, 1, S, K, generator=g), cond, glob)


def model_metadata(cfg: DenoiserTrainConfig, net: SymbolNet, heldout: dict | None = None,
                   command: str | None = None) -> dict[str, str]:
    spec = cfg.spec().replace(n_tx=1)
    S, K = spec.n_sym, spec.n_occ
    mix = cfg.link_mix()
    meta = {
        "gdm_kind": "denoiser",
        "gdm_format": FORMAT_VERSION,
        "frame_preset": spec.name,
        "frame_spec": spec.to_json(),
        "modulations": json.dumps(list(cfg.modulations)),
        # trained per stream on single-stream links (n_tx = 1) with 1, 2 or 4 receive antennas
        "antennas": json.dumps({"per_stream": True, "n_rx": "any", "n_tx": [1]}),
        "inputs": json.dumps({"y": ["B", 2, S, K], "logv": ["B", 1, S, K], "cond": ["B", N_COND, S, K],
                              "glob": ["B", N_GLOBAL]}),
        "outputs": json.dumps({OUTPUT: ["B", 3, S, K], "planes": ["z.re", "z.im", "log w"]}),
        "preprocess": "cpe_track" if cfg.cpe else "none",
        "noise_schedule": json.dumps({
            "type": "variance-exploding Gaussian noise on constellation points, categorical "
                    "(cross-entropy) denoiser through an equivalent observation (z, w)",
            "start": "sigma^2 = post-equalization noise variance of each RE (SNR-matched start step), "
                     "one network evaluation",
            "train_kappa": list(cfg.kappa), "p_diffusion": cfg.p_diffusion}),
        "conditioning": json.dumps({
            "planes": ["posterior mean re", "im", "log posterior var / 4", "(y-m)conj(m) re", "im",
                       "conj(m) at -k re", "im", "conj(y) at -k re", "im", "data mask", "|m|^2",
                       "sin CPE phase", "cos CPE phase - 1"],
            "globals": ["qpsk", "16qam", "64qam", "log10 mean v", "log10 excess error"]}),
        "training_link_mix": json.dumps({
            "profiles": list(mix.profiles), "delay_spread_s": list(mix.delay_spread),
            "doppler_hz": list(mix.doppler), "cfo_hz_max": mix.cfo_hz, "snr_db": list(mix.snr_db),
            "n_rx": list(mix.n_rx), "n_rx_p": list(mix.n_rx_p), "estimators": list(mix.estimators),
            "impairments": {k: v for k, v in mix.impairments.__dict__.items()}}, default=list),
        "training_snr_db": json.dumps(list(cfg.snr_db)),
        "training_seed": str(cfg.seed),
        "training_steps": str(cfg.steps),
        "dataset_size": str(cfg.steps * cfg.batch),
        "dataset": "generated on the fly by the numpy link (one fresh frame per training example)",
        "training_config": json.dumps(cfg.to_dict(), sort_keys=True),
        "n_params": str(n_params(net)),
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "opset": str(OPSET),
    }
    if heldout is not None:
        meta["heldout_ber"] = json.dumps(heldout, sort_keys=True)
    if command:
        meta["training_command"] = command
    return meta


def export_onnx(checkpoint, path, heldout: dict | None = None, command: str | None = None,
                check: bool = True) -> Path:
    """Checkpoint (path or loaded dict) -> ONNX file at ``path`` (EMA weights)."""
    ck = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    net, cfg = model_from_checkpoint(ck)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example_inputs(cfg.spec()), str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(INPUTS), output_names=[OUTPUT],
                          dynamic_axes={n: {0: "batch"} for n in (*INPUTS, OUTPUT)}, do_constant_folding=True)
    model = onnx.load(str(path))
    set_metadata(model, model_metadata(cfg, net, heldout, command))
    onnx.save(model, str(path))
    if check:
        onnx.checker.check_model(str(path))
    return path


def parity(checkpoint, path, batch: int = 4, seed: int = 0) -> float:
    """Max |onnxruntime - torch| on random inputs."""
    import onnxruntime as ort

    ck = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    net, cfg = model_from_checkpoint(ck)
    args = example_inputs(cfg.spec(), batch, seed)
    with torch.no_grad():
        ref = net(*args).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT], {n: a.numpy() for n, a in zip(INPUTS, args)})[0]
    return float(np.max(np.abs(got - ref)))


def main(argv=None) -> None:
    """``gr-gdm export --kind denoiser --checkpoint C --out onnx_models/x.onnx [--heldout
    table.json] [--command "..."]``: export, check parity, update SHA256SUMS beside the file."""
    import argparse

    from ..runtime.checksums import update_sums

    p = argparse.ArgumentParser(description="export a gr-gdm symbol-denoiser checkpoint to ONNX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--heldout", default=None, help="JSON from denoising.evaluate (embedded as metadata)")
    p.add_argument("--command", default=None, help="training command to record")
    p.add_argument("--no-sums", action="store_true", help="do not update SHA256SUMS beside the file")
    a = p.parse_args(argv)
    heldout = json.loads(Path(a.heldout).read_text()) if a.heldout else None
    try:
        path = export_onnx(a.checkpoint, a.out, heldout, a.command)
    except (ValueError, KeyError) as e:
        raise SystemExit(f"gr-gdm export --kind denoiser: {a.checkpoint}: {e}") from None
    err = parity(a.checkpoint, path)
    print(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB), onnxruntime vs torch max |diff| {err:.2e}")
    if err > 1e-4:
        raise SystemExit("parity check failed (> 1e-4)")
    if not a.no_sums:
        print(f"updated {update_sums(path)}")


if __name__ == "__main__":
    main()
