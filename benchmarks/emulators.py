"""Kinesalite, for benchmarks whose stream outgrows moto's Kinesis.

moto's Kinesis copies a shard's sequence numbers on every put, so a put costs time in
proportion to what the shard already holds: at 30,000 records a shard (200 changes/s for 10
minutes over 4 shards) each put costs the emulator about 3.5 ms of CPU, a core's worth at
200 puts/s, on a 2-core machine that also runs the pipeline. Kinesalite (npm, pinned in
benchmarks/kinesalite/package.json and its lock; `make bench-daemon` installs it) serves the
same API from memory at a constant cost per put. S3 and Glue stay on moto. Clients reach it
through `AWS_ENDPOINT_URL_KINESIS`, which boto3 prefers to `AWS_ENDPOINT_URL` for Kinesis.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from demand_assets.local.stack import free_port, stop_process_group, wait_for_port

KINESALITE = Path(__file__).resolve().parent / "kinesalite" / "node_modules" / ".bin" / "kinesalite"


@dataclass
class Kinesalite:
    port: int
    process: subprocess.Popen

    @classmethod
    def start(cls, log=None) -> Kinesalite:
        if not KINESALITE.exists():
            raise SystemExit(
                f"kinesalite is not installed ({KINESALITE}): "
                "npm ci --prefix benchmarks/kinesalite (make bench-daemon does it)"
            )
        port = free_port()
        process = subprocess.Popen(
            # Streams become active at once; in memory (no --path).
            [str(KINESALITE), "--port", str(port), "--shardLimit", "100", "--createStreamMs", "0"],
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(port)
        return cls(port, process)

    def environment(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_KINESIS": f"http://127.0.0.1:{self.port}"}

    def stop(self) -> None:
        stop_process_group(self.process)
