"""Near-field XL-MIMO channel estimation (massive-MIMO case study, issue 8): classical
baselines (LS, angle-domain SWOMP, polar-domain SOMP, SIGW), a diffusion channel prior with
measurement-consistent sampling (SIGW-started posterior refinement, OAMP, annealing), ONNX
export, evaluation and a streaming core.
Pure numpy (+ torch for training/export, onnxruntime for inference); no GNU Radio imports."""
from .estimator import EstimatorCore, make, names

__all__ = ["EstimatorCore", "make", "names"]
