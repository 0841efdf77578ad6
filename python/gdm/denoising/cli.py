"""`gr-gdm train --kind denoiser` and `gr-gdm export --kind denoiser`."""
from __future__ import annotations


def train_cli(argv) -> None:
    from .train import config_from_args, train

    print(train(config_from_args(list(argv))))


def export_cli(argv) -> None:
    from .export import main

    main(list(argv))
