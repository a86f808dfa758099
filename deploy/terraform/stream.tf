# The change stream (SPEC section 1): a Kinesis data stream that the DynamoDB table writes every
# change to ("Kinesis Data Streams for DynamoDB"), read by the demand_stream_sensor.

resource "aws_kinesis_stream" "changes" {
  name             = var.stream_name
  retention_period = var.stream_retention_hours
  shard_count      = var.stream_mode == "PROVISIONED" ? var.stream_shard_count : null

  stream_mode_details {
    stream_mode = var.stream_mode
  }

  encryption_type = "KMS"
  kms_key_id      = "alias/aws/kinesis"
}

resource "aws_dynamodb_kinesis_streaming_destination" "changes" {
  table_name = var.dynamodb_table_name
  stream_arn = aws_kinesis_stream.changes.arn

  # The change time becomes the archive's "now" (SPEC section 2): milliseconds are enough.
  approximate_creation_date_time_precision = "MILLISECOND"
}
