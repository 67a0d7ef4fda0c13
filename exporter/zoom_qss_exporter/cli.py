"""``zoom-qss-exporter``: ``serve`` (the default) and ``simulate``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, add_serve_arguments, settings_from_args

COMMANDS = ("serve", "simulate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoom-qss-exporter",
        description="Prometheus exporter for Zoom QSS (Quality of Service Subscription) webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="receive webhooks and serve metrics (default)")
    try:
        add_serve_arguments(serve, os.environ)
    except ConfigError as error:
        parser.error(str(error))
    simulate_parser = commands.add_parser(
        "simulate", help="send signed, realistic QSS events to a running exporter"
    )
    from .simulate import add_arguments

    add_arguments(simulate_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (
        args_list[0] not in COMMANDS and args_list[0] not in ("-h", "--help", "--version")
    ):
        args_list.insert(0, "serve")
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.command == "simulate":
        from .simulate import run

        return run(args)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, os.environ)
    except ConfigError as error:
        print(f"zoom-qss-exporter: error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import uvicorn

    from .app import Exporter, create_app

    app = create_app(Exporter(settings))
    logging.getLogger("zoom_qss_exporter").info(
        "listening on %s:%d (webhook %s, metrics %s)",
        settings.host,
        settings.port,
        settings.webhook_path,
        settings.telemetry_path,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
