"""``lmrpc <resource> <verb>``: one command group per resource of the method registry.

The groups are declared here with their help, so ``lmrpc --help`` and every other command
start without the params models; a group's commands are derived from the registry
(lmrpc.cli.commands) only when the group is used.
"""

import typer
from typer._click import Command, Context  # typer ships its own click
from typer.core import TyperGroup

GROUPS = {
    "configurations": "A cluster's license servers and features, edited as one object.",
    "license-servers": "License servers of configurations.",
    "products": "Products (the first part of product.feature).",
    "features": "Features with their counters: total, used, reserved, booked, available.",
    "jobs": "Slurm jobs and their bookings.",
    "bookings": "Licenses booked for jobs.",
    "clusters": "Cluster agents' health.",
    "usage": "Usage history, refused demand and current checkouts.",
}


class RegistryGroup(TyperGroup):
    """A group whose commands are the registry's methods of its resource, made on demand."""

    def list_commands(self, ctx: Context) -> list[str]:
        from lmrpc.cli import commands

        return list(commands.commands(self._group))

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        from lmrpc.cli import commands

        return commands.click_command(self._group, cmd_name)

    @property
    def _group(self) -> str:
        assert self.name is not None  # typer names every group it adds
        return self.name


def register(app: typer.Typer) -> None:
    for name, help_text in GROUPS.items():
        group = typer.Typer(cls=RegistryGroup, help=help_text, no_args_is_help=True)
        app.add_typer(group, name=name)
