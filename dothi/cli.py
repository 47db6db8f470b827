"""The ``dothi`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dothi.settings import Settings

app = typer.Typer(help="dothi: open smart-city platform (NGSI-LD broker and services)",
                  no_args_is_help=True)
contexts_app = typer.Typer(help="Manage the @context cache", no_args_is_help=True)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
app.add_typer(contexts_app, name="contexts")
app.add_typer(db_app, name="db")
console = Console(stderr=True)

DbOption = typer.Option(None, "--db", help="Database URL or SQLite file path (DOTHI_DATABASE_URL)")


def _settings(db: Optional[str], **extra: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if db is not None:
        values["database_url"] = db if "://" in db else f"sqlite:///{db}"
    return Settings(**values)


@app.command()
def serve(
    db: Optional[str] = DbOption,
    host: Optional[str] = typer.Option(None, help="Bind address (DOTHI_HOST, default 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, help="Port, 0 for any free one (DOTHI_PORT, 1026)"),
    workers: Optional[int] = typer.Option(
        None, min=1, help="Worker processes sharing the database (DOTHI_WORKERS, default 1)"),
) -> None:
    """Serve the NGSI-LD API and the landing page."""
    import os
    import socket

    import uvicorn

    settings = _settings(db, host=host, port=port, workers=workers)
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    # Listening before announcing: a client that read the line below is queued, not refused.
    sock.listen(2048)
    bound = sock.getsockname()[1]
    # Tests and scripts read this line to learn the port chosen for --port 0.
    print(f"dothi serving on http://{settings.host}:{bound} ({settings.database_url}, "
          f"{settings.workers} worker{'s' if settings.workers > 1 else ''})", flush=True)
    if settings.workers == 1:
        from dothi.app import create_app

        config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    # Workers are fresh processes that build their app from the environment.
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            os.environ[f"DOTHI_{name.upper()}"] = str(value)
    config = uvicorn.Config("dothi.app:app_from_env", factory=True, workers=settings.workers,
                            log_level="warning", access_log=False)
    Multiprocess(config, sockets=[sock]).run()


def _read_entities(path: Path) -> list[Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, list) else [data]


@app.command()
def load(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                       help="NGSI-LD JSON / JSON-LD files (arrays or objects)"),
    db: Optional[str] = DbOption,
    tenant: str = typer.Option("urn:ngsi-ld:tenant:default", help="NGSILD-Tenant"),
    batch: int = typer.Option(1000, min=1, help="Entities per transaction"),
) -> None:
    """Upsert entities from files into the store, with a progress bar."""
    from dothi.app import build_broker

    settings = _settings(db)
    broker = build_broker(settings)
    entities: list[Any] = []
    for path in files:
        entities.extend(_read_entities(path))
    failed = 0
    with Progress(
        TextColumn("[bold]Loading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("load", total=len(entities))
        for start in range(0, len(entities), batch):
            chunk = entities[start : start + batch]
            result = broker.batch(
                tenant, "upsert", chunk,
                lambda item: broker.resolver.active(
                    item.get("@context") if isinstance(item, dict) else None
                ),
            )
            for eid, err in result.errors:
                failed += 1
                console.print(f"[red]{eid}: {err.detail}")
            progress.advance(task, len(chunk))
    broker.store.close()
    console.print(f"Loaded {len(entities) - failed} entities, {failed} failed.")
    if failed:
        raise typer.Exit(1)


@app.command()
def demo(
    db: Optional[str] = DbOption,
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve after loading"),
    port: Optional[int] = typer.Option(None, help="Port for serving (default 1026)"),
) -> None:
    """Load the Đà Nẵng demo city, then serve it."""
    import tempfile

    from dothi.demo import write_demo_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo-city.json"
        write_demo_file(path)
        load([path], db=db, tenant="urn:ngsi-ld:tenant:default", batch=1000)
    if serve_after:
        serve(db=db, host=None, port=port, workers=None)


@contexts_app.command("add")
def contexts_add(
    url: str = typer.Argument(..., help="The URL clients will use for this @context"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The JSON-LD document"),
    db: Optional[str] = DbOption,
) -> None:
    """Preload an @context so the broker never has to fetch it."""
    from dothi.app import build_broker
    from dothi.errors import DothiError
    from dothi.ngsild.timeutil import now_iso

    broker = build_broker(_settings(db))
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
        created = now_iso()
        broker.cache.add(url, document, kind="Cached", created_at=created)
        broker.store.put_context(url, document, "Cached", created)
    except (DothiError, json.JSONDecodeError) as exc:
        console.print(f"[red]Cannot add {url}: {exc}")
        raise typer.Exit(1) from None
    finally:
        broker.store.close()
    console.print(f"Added @context {url}")


@contexts_app.command("list")
def contexts_list(db: Optional[str] = DbOption) -> None:
    """List the @contexts stored in the database."""
    from dothi.store.base import open_store

    store = open_store(_settings(db).database_url)
    for url, _, kind, created in store.contexts():
        print(f"{url}\t{kind}\t{created}")
    store.close()


@db_app.command("upgrade")
def db_upgrade(db: Optional[str] = DbOption) -> None:
    """Create or migrate the database schema."""
    from dothi.store.base import open_store

    settings = _settings(db)
    open_store(settings.database_url).close()
    console.print(f"Schema up to date: {settings.database_url}")


if __name__ == "__main__":
    app()
