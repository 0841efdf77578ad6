"""Input layout of the denoiser network, without torch: the inference path (sampler, features,
the diffusion estimator, site adaptation) needs these constants but never the network itself, so
a receiver does not import torch."""

N_COND = 8  # m.re, m.im, log s, ls.re, ls.im, pilot mask, interp.re, interp.im
N_GLOBAL = 5  # log10 noise var, fit statistic, log delay spread, Doppler (bank posterior means),
# start flag: 1 when x is the sampler's LS/interp start point rather than H + sigma * noise, so
# the network learns to discard that point there without shrinking genuinely noisy x elsewhere
# (without the flag posterior samples came out 3-5 dB under-dispersed)
START_FLAG = 4
