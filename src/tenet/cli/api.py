"""`tenet api`: serve the REST API (and its web view) for a lab or a deployment's store."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from tenet.cli.console import err, fail, progress

token_app = typer.Typer(no_args_is_help=True, help="The REST API's bearer tokens (docs/api.md)")


def lab_tokens(site) -> Path:
    """A lab's tokens file, made at first use: the admin's and one per tenant it has then."""
    from tenet.api.auth import write_new
    from tenet.edits import tenancy_doc
    from tenet.lab.record import Record
    from tenet.model.resources import Kind, items

    path = Record.load(site.lab).dir / "api-tokens.json"
    if not path.exists():
        write_new(path, list(items(tenancy_doc(site)[0], Kind.TENANTS)))
    return path


def api(
    listen: str = typer.Option("127.0.0.1:8080", "--listen", help="ADDRESS:PORT to serve on"),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="the tokens file (docs/api.md); a lab makes its own"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Serve the REST API: OpenAPI at /openapi.json, docs at /docs, the live web view at /."""
    import uvicorn

    from tenet.api.app import create_app
    from tenet.api.auth import TokensError, TokensFile
    from tenet.exposition import ListenError, parse_listen
    from tenet.site import Site, SiteError

    try:
        where = parse_listen(listen, "--listen")
        site = Site.open(lab, store_url, progress=progress)
        if tokens is None and site.lab is None:
            fail("a deployment's API needs --tokens FILE (docs/api.md)")
        source = TokensFile(tokens or lab_tokens(site))
    except (ListenError, SiteError, TokensError) as e:
        fail(str(e))
    err.print(f"tenet api on http://{listen} for {'lab ' + site.lab if site.lab else site.store_url}; "
              f"tokens in {source.path}", highlight=False)
    uvicorn.run(create_app(site, lambda: source.tokens), host=where.addr, port=where.port, log_level="warning")


def _tokens_path(lab: Optional[str], tokens: Optional[str]) -> Path:
    from tenet.site import Site, SiteError

    if tokens:
        return Path(tokens)
    try:
        return lab_tokens(Site.open(lab))
    except SiteError as e:
        fail(str(e))
    raise AssertionError("unreachable")


TOKENS = typer.Option(None, "--tokens", help="the tokens file (default: the lab's)")


@token_app.command("add")
def token_add(tenant: str, tokens: Optional[str] = TOKENS, lab: Optional[str] = typer.Option(None, "--lab")) -> None:
    """Give TENANT a new token (a new tenant, or a rotation: its old token stops working); prints it.
    A running `tenet api` reads the file again on its next request."""
    from tenet.api.auth import TokensError, TokensFile, new_token, save

    path = _tokens_path(lab, tokens)
    try:
        token = new_token()
        save(path, TokensFile(path).tokens.with_tenant(tenant, token))
    except TokensError as e:
        fail(str(e))
    print(token)


@token_app.command("remove")
def token_remove(tenant: str, tokens: Optional[str] = TOKENS, lab: Optional[str] = typer.Option(None, "--lab")) -> None:
    """Withdraw TENANT's token."""
    from tenet.api.auth import TokensError, TokensFile, save

    path = _tokens_path(lab, tokens)
    try:
        current = TokensFile(path).tokens
        if tenant not in dict(current.tenants):
            fail(f"{path}: tenant {tenant!r} has no token")
        save(path, current.with_tenant(tenant, None))
    except TokensError as e:
        fail(str(e))
    err.print(f"{tenant}'s token withdrawn", highlight=False)
