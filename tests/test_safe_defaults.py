"""Safe defaults, checked on the source: no eval/exec, shell or pickle on anything (models load
through onnxruntime, torch checkpoints with weights_only=True, numpy files without pickles), and
the ZMQ examples bind/connect to localhost unless the user names an address."""
import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "python" / "gdm").rglob("*.py")) + [ROOT / "apps" / "gr-gdm"]
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "joblib", "marshal", "shelve"}


def _name(node) -> str:
    """Dotted name of a call's function (np.load, torch.load, subprocess.run, eval)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else "<expr>"
    return None


def unsafe_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where} imports {m}" for m in mods if m.split(".")[0] in UNSAFE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        f = _name(node.func)
        if f in ("eval", "exec", "compile", "__import__", "os.system", "os.popen", "yaml.load", "yaml.unsafe_load"):
            found.append(f"{where} calls {f}")
        if f.startswith("subprocess.") and _kw(node, "shell") not in (None, False):
            found.append(f"{where} runs a shell ({f}(shell=...))")
        if f == "torch.load" and _kw(node, "weights_only") is not True:
            found.append(f"{where} torch.load without weights_only=True")
        if f in ("np.load", "numpy.load") and _kw(node, "allow_pickle") is not False:
            found.append(f"{where} np.load without allow_pickle=False")
    return found


def test_no_eval_shell_or_pickle_in_the_module():
    problems = [p for f in SOURCES for p in unsafe_calls(f)]
    assert not problems, "\n".join(problems)


def test_the_checker_sees_what_it_forbids(tmp_path):
    bad = tmp_path / "unsafe.py"
    bad.write_text("import pickle\nimport subprocess, torch, numpy as np\neval('1')\nsubprocess.run('ls', shell=True)\n"
                   "torch.load('x')\nnp.load('x')\nnp.load('x', allow_pickle=False)\ntorch.load('x', weights_only=True)\n")
    found = unsafe_calls(bad)
    assert len(found) == 5, found


@pytest.mark.parametrize("name", ["zmq_tx", "zmq_rx"])
def test_zmq_examples_default_to_localhost(name):
    g = yaml.safe_load((ROOT / "grc" / "examples" / f"{name}.grc").read_text())
    zmq = [b for b in g["blocks"] if b["id"].startswith("zeromq_")]
    assert zmq, f"{name} has no ZMQ block"
    params = {b["name"]: b for b in g["blocks"] if b["id"] == "parameter"}
    for b in zmq:
        addr = b["parameters"]["address"]
        default = params[addr]["parameters"]["value"] if addr in params else addr
        assert default.strip("'\"").startswith(("tcp://127.0.0.1:", "tcp://localhost:", "ipc://")), (name, default)
        assert addr in params, f"{name}: the address must be a command-line parameter so users can name one"
