"""Kinesis: reading every shard from per-shard checkpoints, following reshards."""
