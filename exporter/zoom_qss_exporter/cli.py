"""``zoom-qss-exporter``: ``serve`` (the default), ``simulate`` and ``replay``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from zoom_qss_exporter import __version__
from zoom_qss_exporter.config import add_serve_arguments, settings_from_args
from zoom_qss_exporter.flags import ConfigError

COMMANDS = ("serve", "simulate", "replay")


def build_parser(command: str = "serve") -> argparse.ArgumentParser:
    """The environment gives defaults to ``command``'s flags only: a bad variable of one
    command (``ZOOM_QSS_STORE_TTL=bogus``) stops that command, not ``--version`` or another."""

    def environ(name: str) -> Mapping[str, str]:
        return os.environ if name == command else {}

    parser = argparse.ArgumentParser(
        prog="zoom-qss-exporter",
        description="Prometheus exporter for Zoom QSS (Quality of Service Subscription) webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="receive webhooks and serve metrics (default)")
    try:
        add_serve_arguments(serve, environ("serve"))
    except ConfigError as error:
        parser.error(str(error))
    simulate_parser = commands.add_parser(
        "simulate", help="send signed, realistic QSS events to a running exporter"
    )
    from zoom_qss_exporter.simulate.run import add_arguments

    add_arguments(simulate_parser)
    replay_parser = commands.add_parser(
        "replay", help="send archived events again: to remote write (backfill) or an exporter"
    )
    from zoom_qss_exporter import replay

    try:
        replay.add_arguments(replay_parser, environ("replay"))
    except ConfigError as error:
        parser.error(str(error))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (
        args_list[0] not in COMMANDS and args_list[0] not in ("-h", "--help", "--version")
    ):
        args_list.insert(0, "serve")
    parser = build_parser(args_list[0])
    args = parser.parse_args(args_list)
    if args.command == "simulate":
        from zoom_qss_exporter.simulate.run import run

        return run(args)
    if args.command == "replay":
        from zoom_qss_exporter import replay

        return replay.run(args)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, os.environ)
    except ConfigError as error:
        print(f"zoom-qss-exporter: error: {error}", file=sys.stderr)
        return 2
    from zoom_qss_exporter import logs

    logs.configure(settings.log.level, settings.log.format)
    from zoom_qss_exporter.app import Exporter, create_app
    from zoom_qss_exporter.ingest.archive import ArchiveError
    from zoom_qss_exporter.remote.client import RemoteWriteError
    from zoom_qss_exporter.remote.wal import WALError
    from zoom_qss_exporter.web.auth import MetricsAuthError

    try:
        exporter = Exporter(settings)
        app = create_app(exporter)
    except (RemoteWriteError, ArchiveError, MetricsAuthError, WALError, ConfigError) as error:
        print(f"zoom-qss-exporter: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the internal address does not resolve
        print(f"zoom-qss-exporter: error: internal listener: {error}", file=sys.stderr)
        return 1
    internal = settings.web.internal_listen
    logging.getLogger("zoom_qss_exporter").info(
        "listening on %s:%d (webhook %s, metrics %s%s)",
        settings.web.host,
        settings.web.port,
        settings.web.webhook_path,
        settings.web.telemetry_path,
        f" on {internal[0]}:{internal[1]}" if internal else "",
    )
    from zoom_qss_exporter.web.server import serve

    try:
        serve(app, settings.web.listeners(), settings.log.level, exporter.http_protocol)
    except OSError as error:  # the address is taken or not ours
        print(f"zoom-qss-exporter: error: cannot listen: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
