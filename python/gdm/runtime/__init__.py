"""onnxruntime sessions for gr-gdm models: provider choice (auto|cpu|cuda), thread settings,
SHA-256 and metadata checks, fixed-size batching."""
from .batching import run_batched
from .checksums import read_sums, sha256_file, update_sums, verify, write_sums
from .session import (DEFAULT_DENOISER_MODEL, DEFAULT_ESTIMATOR_MODEL, ChecksumMismatch, MetadataMismatch, ModelError,
                      ModelFileMissing, NotOnnxModel, OnnxModel, select_providers, shipped_model,
                      validate_metadata)

__all__ = ["OnnxModel", "run_batched", "select_providers", "shipped_model", "validate_metadata",
           "ModelError", "ModelFileMissing", "ChecksumMismatch", "NotOnnxModel", "MetadataMismatch",
           "DEFAULT_ESTIMATOR_MODEL", "DEFAULT_DENOISER_MODEL", "sha256_file", "read_sums", "write_sums", "update_sums", "verify"]
