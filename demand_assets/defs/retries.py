"""Retries for transient AWS errors, in three layers, each bounded.

1. botocore, inside every call: standard retry mode (throttling, 5xx, connection errors),
   `aws.AWS_MAX_ATTEMPTS` attempts in all, with botocore's capped exponential back-off and
   jitter (clients: `demand_assets.aws`). Kinesis gets fewer: the stream reader backs off
   throttling itself, within a tick's time bound.
2. Dagster, around every step that talks to AWS: `AWS_RETRY_POLICY`, three retries with
   exponential back-off and jitter (about 2 s, 6 s, 14 s), for what outlasts botocore's attempts
   (an S3 or Glue blip of a few seconds, a bucket policy being replaced). Every step is
   idempotent, so a retried step doubles nothing.
3. Dagster, around the run: `run_retries` in dagster.yaml, for a run worker that dies (lost
   node, OOM, deploy). Not for step failures, which layer 2 already retried. A stream-path run
   is not retried this way: the next run takes its batches (they stay pending).
"""

import dagster as dg

AWS_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3,
    delay=2.0,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)
