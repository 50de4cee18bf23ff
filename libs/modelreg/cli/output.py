"""Rendering results as a rich table or JSON, and errors as exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from modelreg.client import Registry, RegistryError, errors

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

EXIT_CODES: dict[type[errors.RegistryError], int] = {
    errors.NotFound: 3,
    errors.AlreadyExists: 4,
    errors.InvalidArgument: 5,
    errors.FailedPrecondition: 6,
    errors.PermissionDenied: 7,
    errors.Unauthenticated: 7,
    errors.Aborted: 8,
    errors.Unavailable: 9,
    errors.ResourceExhausted: 9,
    errors.DeadlineExceeded: 9,
}


class Output(StrEnum):
    table = "table"
    json = "json"


def as_dict(message: Message) -> dict[str, object]:
    return MessageToDict(message, preserving_proto_field_name=True)


def echo_json(document: object) -> None:
    typer.echo(json.dumps(document, indent=2))


def emit(items: Sequence[Message], output: Output, columns: Sequence[str], title: str | None = None) -> None:
    rows = [as_dict(m) for m in items]
    if output is Output.json:
        echo_json(rows[0] if len(rows) == 1 and title is None else rows)
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c, "")) for c in columns))
    console.print(table)


def _cell(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def fail(error: errors.RegistryError) -> typer.Exit:
    err_console.print(f"[red]error[/red] {error.code.name}: {error.message}")
    for field, description in error.field_violations:
        err_console.print(f"  {field}: {description}")
    return typer.Exit(EXIT_CODES.get(type(error), 1))


def emit_fields(message: Message, output: Output, title: str) -> None:
    """One message as a JSON document, or as a table of its fields, a row per list item."""
    document = as_dict(message)
    if output is Output.json:
        echo_json(document)
        return
    table = Table(title=title)
    table.add_column("field")
    table.add_column("value")
    for field, value in document.items():
        for item in value if isinstance(value, list) else [value]:
            table.add_row(field, _cell(item))
    console.print(table)


def output_option(default: Output = Output.table) -> Any:
    return typer.Option(default, "--output", "-o", help="table or json")


OutputOption = output_option()


def run(action: Callable[[Registry], T]) -> T:
    """Runs an SDK call with a client configured from the environment; errors become exit codes."""
    try:
        with Registry() as registry:
            return action(registry)
    except RegistryError as error:
        raise fail(error) from None


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint=option)
        parsed[key] = value
    return parsed
