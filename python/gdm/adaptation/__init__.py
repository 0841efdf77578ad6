"""Online site adaptation of the diffusion estimator from received pilots alone (no true channels).

``observations`` (pilot observations from recordings, simulations or a running receiver),
``objective`` (the self-supervised risks: pilot SURE, hold-out risk), ``site_prior`` (the site's
delay profile, Doppler and mixture weights fitted to the pilots), ``guard`` (validation on held-out
frames) and ``adapt`` (the pipeline and the ONNX export).
"""
