"""The `campus-gateway` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import secrets
import signal
import sys
from pathlib import Path

from gateway import systemd
from gateway.backup_cmd import add_backup_commands
from gateway.config import ConfigError, hash_token, load_config
from gateway.district import add_district_commands
from gateway.firelane_cli import add_firelane_commands
from gateway.init_config import add_init_command
from gateway.inventory_cmd import add_inventory_commands
from gateway.logs import LoggingConfig, setup_logging
from gateway.reports import add_report_commands
from gateway.runlock import AlreadyRunningError, run_lock
from gateway.safety import config_warnings
from storage.backup import BackupError, check_not_newer

log = logging.getLogger("gateway")


def _version() -> str:
    try:
        return importlib.metadata.version("campus-safety-gateway")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
        check_not_newer(config.storage.sqlite_path)
    except (ConfigError, BackupError) as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(config.logging, args.verbose)
    for warning in config_warnings(config):
        log.warning("UNSAFE CONFIG: %s", warning)
    from gateway.runtime import Gateway

    async def main() -> None:
        gateway = Gateway(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, gateway.stop)
        notifier = systemd.Notifier()
        notify_task = asyncio.create_task(notifier.serve(gateway.ready), name="sd-notify")
        try:
            await gateway.run()
        finally:
            notify_task.cancel()
            notifier.send("STOPPING=1")

    try:
        with run_lock(config.storage.sqlite_path):
            asyncio.run(main())
    except AlreadyRunningError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for warning in config_warnings(config):
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"{args.config}: OK (campus {config.campus.id}, {len(config.devices)} devices)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import pick_port, run_demo

    port = args.port or pick_port(8080)
    return asyncio.run(run_demo(Path(args.data).resolve(), port, args.host, args.broker, args.period))


def _cmd_hash_token(args: argparse.Namespace) -> int:
    token = args.token or secrets.token_urlsafe(24)
    if not args.token:
        print(f"token:  {token}")
    print(f"sha256: {hash_token(token)}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.fleet import Fleet
    from simulators.scenarios import run_load

    fleet = Fleet(args.campus, args.host, args.port, qos=args.qos)
    device_ids = [f"{args.prefix}{n:04d}" for n in range(args.devices)]
    seconds = run_load(fleet, device_ids, args.messages, args.rate)
    fleet.flush()
    fleet.close()
    print(f"published {args.messages} messages from {args.devices} devices in {seconds:.2f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="campus-gateway", description="Campus Safety Gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG, whatever the config says")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the gateway from a config file")
    run.add_argument(
        "--config", default="config/gateway.yaml", help="the gateway config (default: %(default)s)"
    )
    run.set_defaults(func=_cmd_run)

    check = commands.add_parser("check-config", help="validate a config file, warn about unsafe settings")
    check.add_argument(
        "--config", default="config/gateway.yaml", help="the gateway config (default: %(default)s)"
    )
    check.set_defaults(func=_cmd_check_config)

    demo = commands.add_parser("demo", help="broker + gateway + simulated campus + live page")
    demo.add_argument("--data", default="demo-data", help="folder for the demo's database and broker")
    demo.add_argument("--port", type=int, default=0, help="API port (default 8080, or a free one)")
    demo.add_argument("--host", default="127.0.0.1", help="API address (0.0.0.0 to serve the LAN)")
    demo.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="auto: the system's mosquitto when installed, else amqtt (pure Python)",
    )
    demo.add_argument("--period", type=float, default=5.0, help="seconds between simulated telemetry rounds")
    demo.set_defaults(func=_cmd_demo)

    token = commands.add_parser("hash-token", help="hash an API token for config (makes one if omitted)")
    token.add_argument("token", nargs="?", help="the token to hash (default: make a new one and print it)")
    token.set_defaults(func=_cmd_hash_token)

    simulate = commands.add_parser("simulate", help="fleet mode: N temperature devices publishing at R msg/s")
    simulate.add_argument("--host", default="127.0.0.1", help="broker address (default: %(default)s)")
    simulate.add_argument("--port", type=int, default=1883, help="broker port (default: %(default)s)")
    simulate.add_argument("--campus", default="demo", help="campus id in the topics (default: %(default)s)")
    simulate.add_argument("--devices", type=int, default=100, help="how many devices (default: %(default)s)")
    simulate.add_argument(
        "--messages", type=int, default=10000, help="messages in all (default: %(default)s)"
    )
    simulate.add_argument(
        "--rate", type=float, default=None, help="messages per second (default: full speed)"
    )
    simulate.add_argument("--qos", type=int, choices=(0, 1), default=1, help="MQTT QoS (default: 1)")
    simulate.add_argument("--prefix", default="sim-temp-", help="device id prefix (default: %(default)s)")
    simulate.set_defaults(func=_cmd_simulate)

    add_report_commands(commands)
    add_firelane_commands(commands)
    add_district_commands(commands)
    add_init_command(commands)
    add_inventory_commands(commands)
    add_backup_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(LoggingConfig(), args.verbose)  # `run` sets it again from its config
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
