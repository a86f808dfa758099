# preprod1: every variable of ../variables.tf, and nothing else (a test holds them to that).
environment = "preprod1"
region      = "us-east-1"
image_tag   = "unreleased" # the deployed commit: a release or a roll-back changes this line

# Network
vpc_name                     = "preprod1"
private_subnet_tags          = { tier = "private" }
webserver_certificate_domain = "dagster.preprod1.demand.internal"
webserver_ingress_cidrs      = ["10.0.0.0/8"]

# Data
dynamodb_table_name         = "demand-capture-preprod1"
stream_name                 = "demand-capture-preprod1"
stream_mode                 = "ON_DEMAND"
stream_shard_count          = 2
stream_retention_hours      = 168
stream_start                = "TRIM_HORIZON"
bucket_name                 = "demand-assets-preprod1-archive"
archive_prefix              = "demand"
glue_database               = "demand_preprod1"
athena_bytes_scanned_cutoff = 107374182400
first_partition             = "2020-01-01"
future_days                 = 400

# The stream path (the code's defaults): an archive run within 15 s of a change, or at 5000
# changes; re-deliveries dropped for an hour; at most 200 batches of a type per run
stream_path = {
  buffer_seconds              = 15
  buffer_changes              = 5000
  dedup_window_minutes        = 60
  max_batches_per_run         = 200
  archive_max_runtime_seconds = 600
}

# Alerts: the alert sensors (the code's defaults) and the CloudWatch alarms (alerts.tf). Free
# storage is alarmed under the 10% at which RDS storage autoscaling grows the disk: it fires
# when autoscaling has reached its limit or fallen behind
alerts = {
  lag_seconds     = 300
  error_rate      = 0.001
  archive_minutes = 15
}
alarms = {
  ecs_cpu_percent          = 80
  ecs_memory_percent       = 85
  database_cpu_percent     = 80
  database_free_storage_gb = 2
  database_connections     = 300
}

# Retention
landing_transition_days            = { standard_ia = 30, glacier_ir = 180 }
errors_expiration_days             = 365
athena_results_expiration_days     = 7
compute_logs_expiration_days       = 90
noncurrent_version_expiration_days = 30
log_retention_days                 = 90

# Dagster
postgres = {
  engine_version        = "16"
  instance_class        = "db.t4g.medium"
  allocated_storage_gb  = 50
  multi_az              = true
  backup_retention_days = 14
  deletion_protection   = true
}

task_sizes = {
  webserver   = { cpu = 1024, memory = 2048 }
  daemon      = { cpu = 1024, memory = 2048 }
  code_server = { cpu = 2048, memory = 4096 } # the sensor and the archive runs (variables.tf)
  run         = { cpu = 2048, memory = 8192 }
}
webserver_count = 2
