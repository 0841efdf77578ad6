"""Diffusion channel-estimator models: network, training, ONNX export, evaluation.

Public entry points (imported lazily: torch loads only when training or exporting):
``TrainConfig``, ``train(config) -> checkpoint``, ``export_onnx(checkpoint, path, heldout)``,
``evaluate_nmse(estimators, scenario, ...) -> rows``, ``benchmark(...) -> rows``,
``tiny_model() -> (checkpoint, onnx)``.
"""
import importlib

_LAZY = {"TrainConfig": "train", "train": "train", "export_onnx": "export", "read_metadata": "export",
         "evaluate_nmse": "evaluate", "benchmark": "evaluate", "nmse_table": "evaluate",
         "parse_scenario": "evaluate", "write_csv": "evaluate", "tiny_model": "tiny"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'gnuradio.gdm.models' has no attribute {name!r}")


__all__ = list(_LAZY)
