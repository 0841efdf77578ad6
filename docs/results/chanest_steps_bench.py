"""The model card's step-count, posterior-sampling and CPU-timing tables for an estimator model:
``PYTHONPATH=.dev .venv/bin/python docs/results/chanest_steps_bench.py onnx_models/gdm_chanest_nr72.onnx``
(prints the tables, writes out/steps_bench.json)."""
import json, sys
import numpy as np
from gnuradio.gdm import FrameSpec, estimation
from gnuradio.gdm.models.evaluate import evaluate_nmse, nmse_table, benchmark, draw_scenario, received
from gnuradio.gdm.models.data import purpose_rng, EVAL_PURPOSE
from gnuradio.gdm.sim.grid import ChannelMix
M = sys.argv[1]
R = estimation.base._REGISTRY
opts, names = {}, []
for k, o in {"steps0(bank)": {"steps": 0}, "steps1": {"steps": 1}, "steps2": {"steps": 2}, "steps3": {"steps": 3},
             "policy_snr": {"step_policy": "snr"}}.items():
    R._factories[k] = R.get("diffusion"); names.append(k); opts[k] = {"model": M, **o}
rows = evaluate_nmse(names, ChannelMix(), snrs=(0, 10, 20, 30), n_frames=500, seed=99, options=opts, progress=False)
print(nmse_table(rows), flush=True)
# posterior sampling: predicted per-RE variance vs actual squared error
spec = FrameSpec.preset("nr72"); rng = purpose_rng(98, EVAL_PURPOSE)
H, _ = draw_scenario(spec, ChannelMix(), 100, 1, rng)
est = estimation.make("diffusion", spec, model=M)
cal = {}
for snr in (0, 10, 20):
    nv = 10 ** (-snr / 10); Y = received(spec, H, nv, rng)
    m, v = est.sample(Y, nv, n_samples=8, steps=4, seed=1)
    _, vr = est.sample(Y, nv, n_samples=8, steps=4, seed=1, calibrate=False)
    d = est.estimate(Y, nv)
    cal[snr] = dict(pred_var_db=round(10 * np.log10(v.mean()), 2), raw_var_db=round(10 * np.log10(vr.mean()), 2),
                    mean_err_db=round(10 * np.log10(np.mean(abs(m - H) ** 2)), 2),
                    det_err_db=round(10 * np.log10(np.mean(abs(d - H) ** 2)), 2))
print(json.dumps(cal), flush=True)
b = benchmark(steps_list=(0, 1, 2, 3), n_frames=64, batch=16, options={"model": M}, progress=False)
b += benchmark("bank", n_frames=64, batch=16, progress=False) + benchmark("lmmse", n_frames=64, batch=16, progress=False) \
     + benchmark("ls_interp", n_frames=64, batch=16, progress=False)
for r in b: print(json.dumps(r))
import os
os.makedirs("out", exist_ok=True)
json.dump(dict(steps=rows, calibration=cal, bench=b), open("out/steps_bench.json", "w"), indent=1)
