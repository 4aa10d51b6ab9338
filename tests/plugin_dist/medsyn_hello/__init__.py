"""A minimal third-party medsyn plugin: one model and one sub-command."""

from dataclasses import dataclass

import typer

from medsyn_cli.hookspecs import hookimpl
from medsyn_cli.registry import ModelSpec


@dataclass
class HelloConfig:
    lr: float = 1e-3
    latent_dim: int = 8


def _build(config, res, channels):
    from medsyn_hello.model import HelloModel

    return HelloModel(config, res, channels)


@hookimpl
def register_models(register):
    register(ModelSpec(name="hello-gan", aliases=("hello",), task="unconditional",
                       config_cls=HelloConfig, factory=_build, summary="test plugin model",
                       citation="none", resolutions=(16, 32)))


@hookimpl
def register_commands(app):
    @app.command("hello")
    def hello(name: str = "world"):
        """Say hello (test plugin command)."""
        typer.echo(f"hello {name}")
