"""`gr-gdm train --kind xlmimo` and `gr-gdm export --kind xlmimo` (options: see
``python -m gnuradio.gdm.xlmimo.training --help`` and ``... .export --help``)."""
from __future__ import annotations


def train_cli(argv) -> None:
    from .training import main

    main(list(argv))


def export_cli(argv) -> None:
    from .export import main

    main(list(argv))
