"""ONNX export of a trained denoiser, with the metadata every loader validates (DESIGN "Model
files"): opset 17, batch axis dynamic (the runtime feeds fixed-size batches), the noise level as an
input tensor, and ``metadata_props`` describing frame, shapes, schedule, conditioning and training.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from .network import N_COND, N_GLOBAL, n_params
from .train import TrainConfig, load_checkpoint, model_from_checkpoint

OPSET = 17
INPUTS = ("x", "sigma", "cond", "glob")
OUTPUT = "denoised"
FORMAT_VERSION = "1"


def example_inputs(spec, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    S, K = spec.n_sym, spec.n_occ
    cond = torch.randn(batch, N_COND, S, K, generator=g) * 0.5
    cond[:, 2] = -1.5 + 0.3 * torch.randn(batch, S, K, generator=g)  # log std
    return (torch.randn(batch, 2, S, K, generator=g), torch.rand(batch, generator=g) * 0.5 + 0.05,
            cond, torch.randn(batch, N_GLOBAL, generator=g))


def model_metadata(cfg: TrainConfig, net: torch.nn.Module, heldout: dict | None = None,
                   command: str | None = None, bank_top: int | None = None) -> dict[str, str]:
    """``bank_top``: mixture components of the conditioning at inference (default: as trained);
    fewer cost less CPU per link, at an NMSE cost the model card has to show."""
    spec = cfg.spec().replace(n_tx=1)
    top = cfg.bank_top if bank_top is None else int(bank_top)
    if not 1 <= top <= cfg.bank_top:
        raise ValueError(f"bank_top must be in [1, {cfg.bank_top}] (the training conditioning's), got {bank_top}")
    S, K = spec.n_sym, spec.n_occ
    grid = cfg.bank_grid()
    meta = {
        "gdm_kind": "estimator",
        "gdm_format": FORMAT_VERSION,
        "frame_preset": spec.name,
        "frame_spec": spec.to_json(),
        # a model serves one rx/tx link; n_tx = 2 links use the even / odd pilot comb
        "pilot_patterns": json.dumps(["1tx", "2tx-comb0", "2tx-comb1"]),
        "antennas": json.dumps({"per_link": True, "n_rx": "any", "n_tx": [1, 2]}),
        "inputs": json.dumps({"x": ["B", 2, S, K], "sigma": ["B"], "cond": ["B", N_COND, S, K],
                              "glob": ["B", N_GLOBAL]}),
        "outputs": json.dumps({OUTPUT: ["B", 2, S, K]}),
        "noise_schedule": json.dumps({
            "type": "EDM variance-exploding, preconditioned around the bank posterior (mean m, "
                    "per-RE std s)",
            "train_sigma_over_s": [cfg.sigma_lo, cfg.sigma_hi], "p_start": cfg.p_start,
            "start": "x = LS + linear interpolation, sigma = start_scale * sqrt(mean(|interp - m|^2 + s^2))",
            "start_scale": cfg.start_scale,
            "sampler": "Euler (DDIM) steps on a geometric grid from the start sigma"}),
        "conditioning": json.dumps({
            "planes": ["m.re", "m.im", "log s", "ls.re", "ls.im", "pilot mask", "interp.re", "interp.im"],
            "globals": ["log10 noise_var", "fit/10", "log(ds_mean/100ns)", "fd_mean/400",
                        "start flag (1: x is the LS/interp start point)"],
            "bank": {"profiles": list(grid.profiles), "delay_spread": list(grid.delay_spread),
                     "n_ds": grid.n_ds, "doppler": list(grid.doppler), "n_fd": grid.n_fd,
                     "top": top, "top_trained": cfg.bank_top}}),
        "training_profiles": json.dumps(list(cfg.profiles)),
        "training_delay_spread_s": json.dumps(list(cfg.delay_spread)),
        "training_doppler_hz": json.dumps(list(cfg.doppler)),
        "training_timing_jitter": str(cfg.timing_jitter),
        "training_snr_db": json.dumps(list(cfg.snr_db)),
        **provenance(cfg, net, command, "generated on the fly, one fresh channel per training example"),
    }
    if heldout is not None:
        meta["heldout_nmse_db"] = json.dumps(heldout, sort_keys=True)
    return meta


def provenance(cfg, net, command: str | None, dataset: str) -> dict[str, str]:
    """Training and tool facts every shipped model carries (what the model card is checked against)."""
    meta = {"training_seed": str(cfg.seed), "training_steps": str(cfg.steps),
            "dataset_size": str(cfg.steps * cfg.batch), "dataset": dataset,
            "training_config": json.dumps(cfg.to_dict(), sort_keys=True),
            "n_params": str(n_params(net)),
            "torch_version": torch.__version__, "onnx_version": onnx.__version__, "opset": str(OPSET)}
    if command:
        meta["training_command"] = command
    return meta


def export_onnx(checkpoint, path, heldout: dict | None = None, command: str | None = None,
                check: bool = True, bank_top: int | None = None) -> Path:
    """Checkpoint (path or loaded dict) -> ONNX file at ``path`` (EMA weights). Returns the path."""
    net, cfg = model_from_checkpoint(checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint))
    return write_onnx(net, example_inputs(cfg.spec()), path, model_metadata(cfg, net, heldout, command, bank_top),
                      INPUTS, OUTPUT, check)


def write_onnx(net, args, path, meta: dict[str, str], inputs, output: str, check: bool = True) -> Path:
    """torch module -> ONNX at ``path``: opset 17, batch axis dynamic, ``meta`` as metadata_props."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, args, str(path), dynamo=False, opset_version=OPSET,
                          input_names=list(inputs), output_names=[output],
                          dynamic_axes={n: {0: "batch"} for n in (*inputs, output)},
                          do_constant_folding=True)
    model = onnx.load(str(path))
    set_metadata(model, meta)
    if any(n.op_type == "GroupNormalization" for n in model.graph.node):
        raise RuntimeError("exported graph contains GroupNormalization (not allowed, see DESIGN)")
    onnx.save(model, str(path))
    if check:
        onnx.checker.check_model(str(path))
    return path


def set_metadata(model: onnx.ModelProto, meta: dict[str, str]) -> None:
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=str(v))


def read_metadata(path) -> dict[str, str]:
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def parity(checkpoint, path, batch: int = 4, seed: int = 0) -> float:
    """Max |onnxruntime - torch| on random inputs (the export test wants < 1e-4)."""
    net, cfg = model_from_checkpoint(checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint))
    return torch_ort_max_diff(net, example_inputs(cfg.spec(), batch, seed), path, INPUTS, OUTPUT)


def torch_ort_max_diff(net, args, path, inputs, output: str) -> float:
    import onnxruntime as ort

    with torch.no_grad():
        ref = net(*args).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run([output], {n: a.numpy() for n, a in zip(inputs, args)})[0]
    return float(np.max(np.abs(got - ref)))


def main(argv=None) -> None:
    """``python -m gnuradio.gdm.models.export --checkpoint C --out onnx_models/x.onnx
    [--heldout rows.json] [--command "..."] [--bank-top N]``: export, check parity, update SHA256SUMS."""
    import argparse

    from ..runtime.checksums import SUMS_NAME, read_sums, sha256_file

    p = argparse.ArgumentParser(description="export a gr-gdm estimator checkpoint to ONNX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--heldout", default=None, help="JSON rows from models.evaluate (embedded as metadata)")
    p.add_argument("--command", default=None, help="training command to record")
    p.add_argument("--no-sums", action="store_true", help="do not update SHA256SUMS beside the file")
    p.add_argument("--bank-top", type=int, default=None,
                   help="mixture components of the conditioning at inference (default: as trained)")
    a = p.parse_args(argv)
    heldout = None
    if a.heldout:
        rows = json.loads(Path(a.heldout).read_text())
        heldout = {}
        for r in rows:
            heldout.setdefault(r["scenario"], {}).setdefault(r["estimator"], {})[f"{r['snr_db']:g}"] = r["value"]
    path = export_onnx(a.checkpoint, a.out, heldout, a.command, bank_top=a.bank_top)
    err = parity(a.checkpoint, path)
    print(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB), onnxruntime vs torch max |diff| {err:.2e}")
    if err > 1e-4:
        raise SystemExit("parity check failed (> 1e-4)")
    if not a.no_sums:
        sums = path.parent / SUMS_NAME
        entries = read_sums(sums) if sums.exists() else {}
        entries[path.name] = sha256_file(path)
        sums.write_text("".join(f"{h}  {n}\n" for n, h in sorted(entries.items())))
        print(f"updated {sums}")


if __name__ == "__main__":
    main()
