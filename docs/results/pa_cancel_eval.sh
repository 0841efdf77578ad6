#!/bin/sh
# the evaluation of this branch: one scenario at a time, each from a few dB below its waterfall
set -e
export OMP_NUM_THREADS=1 PYTHONPATH=$PWD/.dev
R=plain,cpe,pa_cancel,cpe+pa_cancel,denoiser,pa_cancel+denoiser
for sc in "pa+pn 11" "pa 9" "clean 7" "rapp 8"; do
  set -- $sc
  .venv/bin/python -m gnuradio.gdm.denoising.evaluate --out out/eval_$1 --runs 8 --frames 32 \
      --scenarios $1 --receivers $R --snr-start $2 --snr-stop 20
done
