locals {
  name       = "demand-assets-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  image = "${aws_ecr_repository.image.repository_url}:${var.image_tag}"

  # Prefixes of the bucket: the archive (SPEC section 4) and two of Dagster's own.
  archive_prefix      = trim(var.archive_prefix, "/")
  athena_prefix       = "athena-results"
  compute_logs_prefix = "dagster/compute-logs"
  athena_output       = "s3://${aws_s3_bucket.archive.bucket}/${local.athena_prefix}/"

  # Names that task definitions and the instance configuration refer to.
  dagster_home       = "/opt/dagster/dagster_home"
  workspace_file     = "${local.dagster_home}/workspace.yaml"
  namespace          = "${local.name}.internal"
  code_server_host   = "code.${local.namespace}"
  code_server_port   = 4000
  webserver_port     = 3000
  run_family         = "${local.name}-run"
  run_container      = "run" # deploy/dagster.yaml: run_launcher.config.ecs.container_name
  code_location      = "demand_assets"
  postgres_user      = "dagster"
  postgres_db        = "dagster"
  definitions_module = "demand_assets.definitions"

  # SPEC section 7: what the code location reads. The code server (the sensor, and the
  # archive_batches runs it runs) and the run tasks get these; the webserver and the daemon
  # never load the definitions (they import only the run launcher, which reads none of these).
  demand_environment = {
    DEMAND_BUCKET           = aws_s3_bucket.archive.bucket
    DEMAND_PREFIX           = local.archive_prefix
    DEMAND_STREAM_NAME      = aws_kinesis_stream.changes.name
    DEMAND_STREAM_START     = var.stream_start
    DEMAND_GLUE_DATABASE    = aws_glue_catalog_database.archive.name
    DEMAND_TABLE_NAME       = var.dynamodb_table_name
    DEMAND_QUERY_ENGINE     = "athena"
    DEMAND_ATHENA_WORKGROUP = aws_athena_workgroup.checks.name
    DEMAND_ATHENA_OUTPUT    = local.athena_output
    DEMAND_FIRST_PARTITION  = var.first_partition
    DEMAND_FUTURE_DAYS      = tostring(var.future_days)
    # The stream path's buffering hints, landing dedup window and run size.
    DEMAND_BUFFER_SECONDS              = tostring(var.stream_path.buffer_seconds)
    DEMAND_BUFFER_CHANGES              = tostring(var.stream_path.buffer_changes)
    DEMAND_DEDUP_WINDOW_MINUTES        = tostring(var.stream_path.dedup_window_minutes)
    DEMAND_MAX_BATCHES_PER_RUN         = tostring(var.stream_path.max_batches_per_run)
    DEMAND_ARCHIVE_MAX_RUNTIME_SECONDS = tostring(var.stream_path.archive_max_runtime_seconds)
  }

  # What deploy/dagster.yaml and deploy/workspace.yaml read with `env:`; every Dagster process
  # loads the instance, so every task gets these, and DAGSTER_RUN_TASK_DEFINITION (ecs.tf).
  dagster_environment = {
    AWS_REGION                  = var.region
    AWS_DEFAULT_REGION          = var.region
    DAGSTER_PG_HOST             = aws_db_instance.dagster.address
    DAGSTER_PG_PORT             = tostring(aws_db_instance.dagster.port)
    DAGSTER_PG_DB               = aws_db_instance.dagster.db_name
    DAGSTER_PG_USERNAME         = aws_db_instance.dagster.username
    DAGSTER_COMPUTE_LOGS_BUCKET = aws_s3_bucket.archive.bucket
    DAGSTER_COMPUTE_LOGS_PREFIX = local.compute_logs_prefix
    DAGSTER_CODE_SERVER_HOST    = local.code_server_host
  }

  dagster_secrets = {
    DAGSTER_PG_PASSWORD = "${aws_secretsmanager_secret.postgres.arn}:password::"
  }
}
