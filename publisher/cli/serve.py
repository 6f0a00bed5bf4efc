"""`serve` and `user add|list|disable|token`: the browser console and its users."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from publisher.cli.console import PLAIN, app, env, err, out
from publisher.roles import Role

if TYPE_CHECKING:
    from publisher.store.accounts import Accounts

user_app = typer.Typer(no_args_is_help=True, **PLAIN, help="Console users, their roles and API tokens.")
app.add_typer(user_app, name="user")
Name = Annotated[str, typer.Argument(help="The user name (the SSO name when a proxy signs users in).")]



@app.command()
def serve(ctx: typer.Context,
          host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
          tls_cert: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM).")]
          = None,
          tls_key: Annotated[Path | None, typer.Option(help="The certificate's private key (PEM).")] = None,
          ) -> None:
    """Run the browser console (dashboard, releases, approvals) until Ctrl-C or SIGTERM."""
    from publisher.errors import InputError

    e = env(ctx)
    e.config  # noqa: B018  (a bad config is reported now, as exit 2)
    if (tls_cert is None) != (tls_key is None):
        raise InputError("--tls-cert and --tls-key go together")
    import uvicorn

    from publisher.console.server import create_app

    console = create_app(e.config_path, e.state_dir)
    if not console.core.accounts.users():
        err.print("no console users yet: add one with `publisher user add NAME --role admin`")
    scheme = "https" if tls_cert else "http"
    err.print(f"publisher console on {scheme}://{host}:{port}/ (times in {e.config.zone.key}); Ctrl-C stops")
    if host not in ("127.0.0.1", "::1", "localhost") and not tls_cert:
        err.print("[yellow]warning:[/] listening beyond this machine without TLS: put it behind a "
                  "reverse proxy with TLS (see the README)", markup=True)
    assert console.app is not None
    try:
        uvicorn.run(console.app, host=host, port=port, proxy_headers=False, server_header=False,
                    log_config=None, access_log=False,
                    ssl_certfile=str(tls_cert) if tls_cert else None,
                    ssl_keyfile=str(tls_key) if tls_key else None)
    finally:
        console.tasks.shutdown()


def _accounts(ctx: typer.Context) -> Accounts:
    from publisher.store.accounts import Accounts

    return Accounts(env(ctx).store)


@user_app.command("add")
def user_add(ctx: typer.Context, name: Name,
             role: Annotated[Role, typer.Option("--role", help="viewer, publisher, approver or admin.")]
             ) -> None:
    """Add a console user. The password is asked on the terminal, or read from standard input."""
    accounts = _accounts(ctx)
    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    accounts.add_user(name, role, password)
    out.print(f"added {name} ({role.value})")


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """Console users, their roles and whether they are enabled."""
    table = Table(title="console users")
    for col in ("user", "role", "status", "added"):
        table.add_column(col)
    zone = env(ctx).config.zone
    for u in _accounts(ctx).users():
        added = u.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if u.created_at else ""
        table.add_row(u.name, u.role.value, "[red]disabled[/]" if u.disabled else "enabled", added)
    out.print(table)


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: Name) -> None:
    """Disable a user: their sessions end and their API tokens stop working at once."""
    accounts = _accounts(ctx)
    accounts.disable(name)
    revoked = accounts.revoke_tokens(name)
    out.print(f"disabled {name}; {revoked} API token(s) revoked")


@user_app.command("token")
def user_token(ctx: typer.Context, name: Name,
               revoke: Annotated[bool, typer.Option("--revoke", help="Revoke all of the user's tokens.")]
               = False) -> None:
    """Make an API token for scripts (shown once, stored hashed), or revoke the user's tokens."""
    accounts = _accounts(ctx)
    if revoke:
        out.print(f"{accounts.revoke_tokens(name)} token(s) of {name} revoked")
        return
    token = accounts.new_token(name)
    err.print(f"API token for {name} (shown once; send it as Authorization: Bearer TOKEN):")
    out.print(token, markup=False)
