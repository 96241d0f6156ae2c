"""``dskd models``: the registered model names per zoo."""

from __future__ import annotations

from typing import Annotated

import typer

from dskd_cli import render


def models_(
    params: Annotated[bool, typer.Option("--params", help="Also build each model and count its parameters.")] = False,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes, for --params (default: cifar 100, imagenet 1000).")
    ] = None,
    zoo: Annotated[
        str | None,
        typer.Option(help="cifar (32x32, CIFAR-100/digits) or imagenet (torchvision layouts); default both."),
    ] = None,
) -> None:
    """List the registered model names (the names the field uses), per zoo: the dataset picks the zoo."""
    from dskd_core.models.registry import describe

    render.models_table(describe(zoo, params=params, num_classes=num_classes))
