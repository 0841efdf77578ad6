"""GRC side of gr-gdm: block YAML against the Python blocks, the block tree, port sizes as GRC
computes them, and the example flowgraphs compiled with grcc and run (headless ones to the end,
the QT GUI one offscreen for a few seconds)."""
from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRC = ROOT / "grc"
EXAMPLES = GRC / "examples"
BLOCK_FILES = sorted(GRC.glob("gdm_*.block.yml"))
HEADLESS = ["gdm_sim_link_1x2", "gdm_sim_link_1x4", "gdm_sim_link_2x2", "gdm_sim_link_one_block"]
QT_GUI = "gdm_sim_link_qt_gui"
# compiled and run by tests/grc/test_radio_io.py
RADIO_IO = ["usrp_rx_2ch", "usrp_tx", "usrp_loopback", "zmq_tx", "zmq_rx", "record_sigmf", "replay_sigmf"]
# compiled and run by tests/grc/test_xlmimo_example.py
XLMIMO = ["xlmimo_sim_estimator"]

# GRC defaults that differ from the Python defaults on purpose.
INTENDED_DEFAULT_DIFFS = {("link_stats", "print_interval")}  # print by default in a flowgraph

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

gdm = pytest.importorskip("gnuradio.gdm")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def params(block: dict) -> dict[str, dict]:
    return {p["id"]: p for p in block["parameters"]}


def make_call(block: dict) -> ast.Call:
    """templates.make as a Python call, each ${expr} replaced by the name PARAM_<expr>."""
    src = re.sub(r"\$\{\s*(\w+)\s*\}", r"PARAM_\1", " ".join(block["templates"]["make"].split()))
    call = ast.parse(src, mode="eval").body
    assert isinstance(call, ast.Call), src
    return call


def block_class(block: dict):
    call = make_call(block)
    f = call.func
    assert isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "gdm", \
        f"{block['id']}: make must call gdm.<block>(...)"
    return f.attr, getattr(gdm, f.attr)


def yaml_default(p: dict):
    """The Python value of a parameter's GRC default, as GRC would generate it."""
    d, dtype = p.get("default"), p["dtype"]
    if dtype in ("string", "file_open", "file_save"):
        return "" if d is None else str(d)
    if dtype in ("int", "real", "bool", "raw", "enum"):
        return eval(str(d), {})  # noqa: S307 - our own YAML
    raise AssertionError(f"unexpected dtype {dtype}")


# --------------------------------------------------------------------------------------------
# Block YAML
# --------------------------------------------------------------------------------------------
def test_all_blocks_have_yaml():
    ids = {p.name.removesuffix(".block.yml") for p in BLOCK_FILES}
    assert ids == {f"gdm_{b}" for b in gdm._BLOCKS}


@pytest.mark.parametrize("path", BLOCK_FILES, ids=lambda p: p.name.split(".")[0])
def test_block_yaml(path):
    b = load(path)
    assert b["id"] == path.name.removesuffix(".block.yml")
    assert b["file_format"] == 1
    assert b["category"].startswith("[GDM]/")
    assert len(b.get("documentation", "").strip()) > 200, "documentation too short"
    assert b["templates"]["imports"].strip() == "from gnuradio import gdm"

    name, cls = block_class(b)
    assert callable(cls)
    sig = inspect.signature(cls.__init__)
    py = {k: v for k, v in sig.parameters.items() if k != "self"}
    call = make_call(b)
    assert not call.args, f"{b['id']}: pass parameters by keyword"
    kw = {k.arg: k.value for k in call.keywords}
    assert set(kw) == set(py), (f"{b['id']} make arguments differ from {name}.__init__: "
                                f"YAML only {sorted(set(kw) - set(py))}, Python only {sorted(set(py) - set(kw))}")
    ps = params(b)
    for k, v in kw.items():
        assert isinstance(v, ast.Name) and v.id == f"PARAM_{k}", f"{b['id']}: {k}=${{{k}}} expected"
        assert k in ps, f"{b['id']}: no parameter {k}"
    for k, p in ps.items():
        if (name, k) in INTENDED_DEFAULT_DIFFS or py[k].default is inspect.Parameter.empty:
            continue  # intended, or required in Python (e.g. a file path): no default to compare
        want = py[k].default
        got = yaml_default(p)
        assert got == want or (want is None and got is None), f"{b['id']}.{k}: GRC default {got!r}, Python {want!r}"

    for cb in b["templates"].get("callbacks", []):
        m = re.fullmatch(r"(\w+)\(\$\{\s*(\w+)\s*\}\)", cb.strip())
        assert m, cb
        assert callable(getattr(cls, m.group(1), None)), f"{name} has no {m.group(1)}"
        assert m.group(2) in ps


def test_tree_lists_every_block_in_its_category():
    tree = load(GRC / "gdm.tree.yml")
    assert list(tree) == ["[GDM]"]
    placed = {blk: sub for entry in tree["[GDM]"] for sub, blks in entry.items() for blk in blks}
    for path in BLOCK_FILES:
        b = load(path)
        assert placed.get(b["id"]) == b["category"].split("/", 1)[1], b["id"]
    assert len(placed) == len(BLOCK_FILES)


def test_option_lists_match_the_library():
    from gnuradio.gdm import estimation
    from gnuradio.gdm.frame import FECS, MODULATIONS, FrameSpec
    from gnuradio.gdm.ofdm.equalizer import METHODS
    from gnuradio.gdm.sim.profiles import profile_names

    blocks = {p.name.split(".")[0]: params(load(p)) for p in BLOCK_FILES}
    for bid, ps in blocks.items():
        if "preset" in ps:
            assert ps["preset"]["options"] == FrameSpec.presets(), bid
        if "modulation" in ps:
            assert ps["modulation"]["options"] == list(MODULATIONS), bid
        if "fec" in ps:
            assert ps["fec"]["options"] == ["", *FECS], bid
        if "profile" in ps:
            assert ps["profile"]["options"] == profile_names(), bid
    assert blocks["gdm_mimo_equalizer"]["method"]["options"] == list(METHODS)
    assert blocks["gdm_ofdm_receiver"]["equalizer"]["options"] == list(METHODS)
    assert blocks["gdm_ofdm_receiver"]["method"]["options"] == blocks["gdm_channel_estimator"]["method"]["options"]
    offered = blocks["gdm_channel_estimator"]["method"]["options"]
    missing = [m for m in estimation.names() if m not in offered]
    assert not missing, (f"estimators {missing} are registered but not offered in GRC: add them to "
                         "the method options in grc/gdm_channel_estimator.block.yml")
    assert set(offered) <= set(estimation.names())
    from gnuradio.gdm import denoising
    assert blocks["gdm_symbol_denoiser"]["method"]["options"] == denoising.names()


# --------------------------------------------------------------------------------------------
# The blocks as GRC itself builds them: ports, vector lengths, asserts
# --------------------------------------------------------------------------------------------
def _grc_block(platform, key, **values):
    fg = platform.make_flow_graph()
    blk = fg.new_block(key)
    blk.params["id"].set_value(key + "_0")
    for k, v in values.items():
        blk.params[k].set_value(str(v))
    fg.rewrite()  # one rewrite only: ports must be right the first time (see the YAML comments)
    fg.validate()
    return blk


def _stream(ports):
    return [(p.dtype, p.vlen) for p in ports if p.domain == "stream"]


@pytest.mark.parametrize("preset,n_rx,n_tx", [("nr72", 2, 1), ("nr72", 4, 2), ("wifi64", 3, 1)])
def test_grc_ports(platform, preset, n_rx, n_tx):
    spec = gdm.FrameSpec.preset(preset)
    F, K = spec.fft_len, spec.n_occ
    p = f"'{preset}'"
    expect = {
        "gdm_ofdm_tx": (dict(preset=p, n_tx=n_tx), [], [("complex", 1)] * n_tx),
        "gdm_channel_sim": (dict(preset=p, n_tx=n_tx, n_rx=n_rx), [("complex", 1)] * n_tx, [("complex", 1)] * n_rx),
        "gdm_ofdm_sync_demod": (dict(preset=p, n_rx=n_rx), [("complex", 1)] * n_rx, [("complex", F)] * n_rx),
        "gdm_channel_estimator": (dict(preset=p, n_rx=n_rx, n_tx=n_tx), [("complex", F)] * n_rx,
                                  [("complex", n_rx * n_tx * F)]),
        "gdm_mimo_equalizer": (dict(preset=p, n_rx=n_rx, n_tx=n_tx),
                               [("complex", F)] * n_rx + [("complex", n_rx * n_tx * F)],
                               [("complex", K)] * n_tx + [("float", n_tx * K)]),
        "gdm_symbol_denoiser": (dict(preset=p, n_tx=n_tx, method="'cpe'"),
                                [("complex", K)] * n_tx + [("float", n_tx * K)],
                                [("complex", K)] * n_tx + [("float", n_tx * K)]),
        "gdm_iq_compensator": (dict(n_ch=n_rx), [("complex", 1)] * n_rx, [("complex", 1)] * n_rx),
        "gdm_frame_decoder": (dict(preset=p, n_tx=n_tx), [("complex", K)] * n_tx + [("float", n_tx * K)], []),
        "gdm_link_stats": (dict(preset=p, n_tx=n_tx), [], []),
        "gdm_ofdm_receiver": (dict(preset=p, n_rx=n_rx, n_tx=n_tx), [("complex", 1)] * n_rx, []),
    }
    for key, (values, ins, outs) in expect.items():
        blk = _grc_block(platform, key, **values)
        assert (_stream(blk.sinks), _stream(blk.sources)) == (ins, outs), key
        errors = [e for e in blk.get_error_messages() if "not connected" not in e]
        assert not errors, (key, errors)


@pytest.mark.parametrize("key,values,bad", [
    ("gdm_channel_sim", dict(n_rx=0), "n_rx >= 1"),
    ("gdm_channel_sim", dict(rx_corr=1.5), "rx_corr"),
    ("gdm_ofdm_tx", dict(n_tx=3), "n_tx in"),
    ("gdm_mimo_equalizer", dict(n_rx=1, n_tx=2), "n_rx >= n_tx"),
    ("gdm_mimo_equalizer", dict(n_rx=2, n_tx=2, method="mrc"), "method != 'mrc'"),
    ("gdm_ofdm_sync_demod", dict(preset="'lte'"), "presets"),
    ("gdm_symbol_denoiser", dict(method="'magic'"), "method in"),
    ("gdm_iq_compensator", dict(memory=0), "memory >= 1"),
    ("gdm_ofdm_receiver", dict(n_rx=1, n_tx=2), "n_rx >= n_tx"),
    ("gdm_ofdm_receiver", dict(batch_frames=0), "batch_frames >= 1"),
])
def test_grc_asserts(platform, key, values, bad):
    errors = _grc_block(platform, key, **values).get_error_messages()
    assert any(bad in e for e in errors), errors


# --------------------------------------------------------------------------------------------
# Example flowgraphs
# --------------------------------------------------------------------------------------------
def test_examples_present():
    assert {p.stem for p in EXAMPLES.glob("*.grc")} == {*HEADLESS, QT_GUI, *RADIO_IO, *XLMIMO}


@pytest.mark.parametrize("name", [*HEADLESS, QT_GUI])
def test_example_compiles(compiled, name):
    assert (compiled / f"{name}.py").is_file()


STATS = re.compile(r"^(final )?(.*?): sent (\d+) ok (\d+) lost (\d+)", re.M)


@pytest.mark.parametrize("name,args,label", [
    ("gdm_sim_link_1x2", [], "1x2 ls_interp"),
    ("gdm_sim_link_1x4", ["--estimator", "ls"], "1x4 ls"),
    ("gdm_sim_link_2x2", [], "2x2 ls_interp"),
    ("gdm_sim_link_one_block", ["--estimator", "lmmse"], "1x2 one-block lmmse"),
])
def test_headless_example_runs(compiled, name, args, label):
    n = 40
    r = subprocess.run([sys.executable, str(compiled / f"{name}.py"), "--n-frames", str(n), *args],
                       capture_output=True, text=True, timeout=300, cwd=compiled)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    lines = STATS.findall(r.stdout)
    assert any(not final for final, *_ in lines), f"gdm_link_stats printed nothing:\n{out}"
    final = [x for x in lines if x[0]]
    assert len(final) == 1, out
    _, printed, sent, ok, _ = final[0]
    assert printed == label
    assert int(sent) == n, out
    assert int(ok) >= 0.9 * n, out


QT_DRIVER = r"""
import importlib, sys
sys.path.insert(0, sys.argv[1])
from PyQt5 import Qt
mod = importlib.import_module(sys.argv[2])
app = Qt.QApplication(sys.argv[:1])
tb = getattr(mod, sys.argv[2])()
tb.start()
tb.show()
def change():  # what the SNR range widget and the choosers call
    tb.set_snr_db(15.0)
    tb.set_estimator('lmmse')
    tb.set_equalizer('zf')
def finish():
    tb.stop()
    tb.wait()
    app.quit()
Qt.QTimer.singleShot(2500, change)
Qt.QTimer.singleShot(6000, finish)
app.exec_()
d = tb.gdm_frame_decoder_0.stats()
print("RESULT", tb.gdm_channel_estimator_0.method, tb.gdm_mimo_equalizer_0.method,
      tb.gdm_channel_sim_0.ch.snr_db, d["frames"], d["ok"], flush=True)
"""


def test_qt_gui_example_runs_offscreen(compiled, tmp_path):
    pytest.importorskip("PyQt5.Qt")
    pytest.importorskip("gnuradio.qtgui")
    driver = tmp_path / "drive_qt.py"
    driver.write_text(QT_DRIVER)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, str(driver), str(compiled), QT_GUI], capture_output=True,
                       text=True, timeout=180, env=env, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Traceback" not in out, out
    m = re.search(r"^RESULT (\S+) (\S+) (\S+) (\d+) (\d+)$", r.stdout, re.M)
    assert m, out
    method, eq, snr, frames, ok = m.groups()
    assert (method, eq, float(snr)) == ("lmmse", "zf", 15.0)
    assert int(frames) >= 5, out
    assert int(ok) >= 0.8 * int(frames), out
