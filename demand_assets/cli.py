"""`demand-assets`: the demo on the local stack, a headless run, and the traffic generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from demand_assets.defs.sensor import DEFAULT_INTERVAL_SECONDS

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demand-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="moto server + traffic + `dagster dev`")
    demo.add_argument("--rate", type=float, default=20.0, help="changes per second")
    demo.add_argument("--port", type=int, default=3000, help="the Dagster UI's port")
    demo.add_argument("--quiet", action="store_true", help="no malformed or other-type changes")

    headless = commands.add_parser("headless", help="the demo without the UI, then a summary")
    headless.add_argument("--records", type=int, default=5000)
    headless.add_argument("--rate", type=float, default=500.0)
    headless.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_SECONDS)
    headless.add_argument(
        "--types", type=_record_types, help="record types, comma-separated (default: all)"
    )
    headless.add_argument(
        "--log-file", type=Path, help="Dagster's output (default: .local/logs/headless-dagster.log)"
    )

    traffic = commands.add_parser("traffic", help="put generated changes on a Kinesis stream")
    traffic.add_argument("--stream", help="default: DEMAND_STREAM_NAME")
    traffic.add_argument("--rate", type=float, default=20.0, help="changes per second")
    traffic.add_argument("--count", type=int, help="stop after this many (default: endless)")
    traffic.add_argument("--seed", type=int, default=0)
    traffic.add_argument("--noise", action="store_true", help="a few malformed and other items")
    traffic.add_argument("--to-file", type=Path, help="write the changes to a file instead")
    traffic.add_argument("--replay", type=Path, help="put the changes of a file written before")

    args = parser.parse_args(argv)
    if args.command == "demo":
        from demand_assets.local.demo import run_demo

        return run_demo(ROOT, rate=args.rate, port=args.port, noise=not args.quiet)
    if args.command == "headless":
        from demand_assets.local.headless import run_headless

        return run_headless(
            ROOT,
            records=args.records,
            rate=args.rate,
            interval=args.interval,
            types=args.types,
            log_path=args.log_file,
        )
    return _traffic(args)


def _record_types(value: str) -> list[str]:
    from demand_assets.records import RECORD_TYPES

    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = sorted(set(types) - set(RECORD_TYPES))
    if unknown or not types:
        raise argparse.ArgumentTypeError(f"record types are {', '.join(RECORD_TYPES)}")
    return types


def _traffic(args) -> int:
    import itertools

    import boto3

    from demand_assets.config import Settings
    from demand_assets.traffic.generator import ChangeGenerator
    from demand_assets.traffic.producer import paced, put, read_file, write_file

    noise = {"other_type_share": 0.02, "malformed_share": 0.005} if args.noise else {}
    if args.replay:
        changes = read_file(args.replay)
    else:
        changes = iter(ChangeGenerator(seed=args.seed, rate_per_second=args.rate, **noise))
    if args.count is not None:
        changes = itertools.islice(changes, args.count)
    if args.to_file:
        print(f"wrote {write_file(args.to_file, changes):,} changes to {args.to_file}")
        return 0
    stream = args.stream or Settings.from_env().stream_name
    client, total = boto3.client("kinesis"), 0
    for chunk in paced(changes, args.rate):
        total += put(client, stream, chunk)
        print(f"put {total:,} changes on {stream}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
