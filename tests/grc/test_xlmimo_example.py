"""The XL-MIMO example flowgraph (grc/examples/xlmimo_sim_estimator.grc) compiled with grcc and
run headless, and the XL-MIMO blocks' ports as GRC computes them."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

SCRIPT = "xlmimo_sim_estimator.py"  # grc/examples/xlmimo_sim_estimator.grc, compiled (conftest)

gdm = pytest.importorskip("gnuradio.gdm")

FINAL = re.compile(r"^final xlmimo_estimator (\w+): (\d+) estimates, NMSE (\S+) dB, (\S+) ms per estimate$", re.M)


def _run(script, *args):
    r = subprocess.run([sys.executable, "-u", str(script), *args], capture_output=True, text=True, timeout=300,
                       cwd=script.parent)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    m = FINAL.findall(r.stdout)
    assert len(m) == 1, out
    method, n, nmse, _ = m[0]
    return method, int(n), float(nmse)


@pytest.fixture(scope="module")
def swomp_run(compiled):
    return _run(compiled / SCRIPT, "--method", "swomp", "--n-frames", "1")


def test_example_runs_baseline(swomp_run):
    method, n, nmse = swomp_run
    assert (method, n) == ("swomp", 16)      # 1 frame x 16 users, none lost at the end of the stream
    assert nmse < -5                         # (a zero estimate scores 0 dB)


def test_example_runs_diffusion_with_the_shipped_prior(compiled, swomp_run):
    from gnuradio.gdm.xlmimo.evaluate import default_prior
    if default_prior() is None:
        pytest.skip("shipped XL-MIMO prior not built")
    method, n, nmse = _run(compiled / SCRIPT, "--method", "diffusion", "--n-frames", "1")
    assert (method, n) == ("diffusion", 16)
    assert nmse < swomp_run[2] - 3           # same seed, same channels: well below the angle-domain baseline


@pytest.mark.parametrize("truth", [False, True])
def test_grc_ports(platform, truth):
    fg = platform.make_flow_graph()
    est = fg.new_block("gdm_xlmimo_estimator")
    est.params["id"].set_value("est")
    est.params["method"].set_value("'swomp'")
    est.params["n_pilots"].set_value("4")
    est.params["truth"].set_value(str(truth))
    sim = fg.new_block("gdm_xlmimo_sim")
    sim.params["id"].set_value("sim")
    sim.params["n_pilots"].set_value("4")
    fg.rewrite()
    fg.validate()
    stream = (lambda ports: [(p.dtype, p.vlen) for p in ports if p.domain == "stream"])
    assert stream(est.active_sinks) == [("complex", 4 * 16 * 8)] + ([("complex", 256 * 8)] if truth else [])
    assert stream(est.sources) == [("complex", 256 * 8)]
    assert stream(sim.sources) == [("complex", 4 * 16 * 8), ("complex", 256 * 8)]
    for b in (est, sim):
        assert not [e for e in b.get_error_messages() if "not connected" not in e], b.get_error_messages()
    est.params["method"].set_value("'ls'")
    fg.rewrite()
    fg.validate()
    assert any("n_pilots * n_rf >= n_ant" in e for e in est.get_error_messages())
