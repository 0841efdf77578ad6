"""SHA-256 checks of model files against ``SHA256SUMS`` (the ``sha256sum`` format:
``<hex>  <file name>`` per line)."""
from __future__ import annotations

import hashlib
from pathlib import Path

SUMS_NAME = "SHA256SUMS"


class ChecksumMismatch(ValueError):
    pass


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sums(path) -> dict[str, str]:
    """{file name: hex digest} from a SHA256SUMS file (binary-mode '*' markers accepted)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        out[name.strip().lstrip("*")] = digest.lower()
    return out


def write_sums(directory, names=None) -> Path:
    """(Re)write ``directory/SHA256SUMS`` for ``names`` (default: every *.onnx there)."""
    d = Path(directory)
    names = sorted(names) if names is not None else sorted(p.name for p in d.glob("*.onnx"))
    sums = d / SUMS_NAME
    sums.write_text("".join(f"{sha256_file(d / n)}  {n}\n" for n in names))
    return sums


def update_sums(path) -> Path:
    """Add (or refresh) ``path``'s line in the SHA256SUMS beside it, keeping the other lines."""
    path = Path(path)
    sums = path.parent / SUMS_NAME
    entries = read_sums(sums) if sums.exists() else {}
    entries[path.name] = sha256_file(path)
    sums.write_text("".join(f"{h}  {n}\n" for n, h in sorted(entries.items())))
    return sums


def verify(path, expected: str | None = None, sums_file=None) -> str | None:
    """Check ``path`` against ``expected`` (hex) or its entry in ``sums_file`` (default: the
    SHA256SUMS beside it). Returns the digest checked against, or None when no reference exists
    (a user model outside a checksummed directory). Raises ChecksumMismatch."""
    path = Path(path)
    source = "the given checksum"
    if expected is None:
        sums = Path(sums_file) if sums_file is not None else path.parent / SUMS_NAME
        if not sums.exists():
            return None
        expected = read_sums(sums).get(path.name)
        source = str(sums)
        if expected is None:
            return None
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumMismatch(f"checksum mismatch for {path}: SHA-256 is {actual}, {source} says "
                               f"{expected.lower()}; the file is corrupt or was replaced "
                               f"(re-export it and update SHA256SUMS, or pass the right checksum)")
    return actual
