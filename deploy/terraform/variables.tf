# Every environment (environments/<env>.tfvars) sets every variable: environments differ only
# in these values.

variable "environment" {
  description = "The environment's name, part of every resource name."
  type        = string

  validation {
    condition     = contains(["dev1", "qa1", "preprod1", "prod1"], var.environment)
    error_message = "environment is one of dev1, qa1, preprod1, prod1."
  }
}

variable "region" {
  description = "The AWS region."
  type        = string
}

variable "image_tag" {
  description = "The tag of the demand-assets image in this environment's ECR repository (the git commit it was built from). Changing it is an upgrade; setting the previous one back is a roll-back."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,128}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag is an immutable tag (a commit), never latest."
  }
}

# Network ---------------------------------------------------------------------------------------

variable "vpc_name" {
  description = "The Name tag of the VPC the services run in."
  type        = string
}

variable "private_subnet_tags" {
  description = "Tags that select the VPC's private subnets (with a route to the AWS APIs: NAT or VPC endpoints)."
  type        = map(string)
}

variable "webserver_certificate_domain" {
  description = "The domain of the issued ACM certificate for the internal load balancer of the Dagster UI."
  type        = string
}

variable "webserver_ingress_cidrs" {
  description = "The networks (VPN, bastion) allowed to reach the Dagster UI on 443."
  type        = list(string)
}

# Data ------------------------------------------------------------------------------------------

variable "dynamodb_table_name" {
  description = "The existing DynamoDB table whose changes are archived (its Kinesis streaming destination is managed here)."
  type        = string
}

variable "stream_name" {
  description = "DEMAND_STREAM_NAME: the Kinesis stream of the table's changes."
  type        = string
}

variable "stream_mode" {
  description = "ON_DEMAND, or PROVISIONED with stream_shard_count shards."
  type        = string

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode is ON_DEMAND or PROVISIONED."
  }
}

variable "stream_shard_count" {
  description = "Shards of a PROVISIONED stream (ignored ON_DEMAND)."
  type        = number
}

variable "stream_retention_hours" {
  description = "How long the stream keeps a change: how long the sensor may be down without losing one."
  type        = number

  validation {
    condition     = var.stream_retention_hours >= 24 && var.stream_retention_hours <= 8760
    error_message = "stream_retention_hours is between 24 and 8760."
  }
}

variable "stream_start" {
  description = "DEMAND_STREAM_START: where a shard with no checkpoint starts (LATEST, TRIM_HORIZON, AT_TIMESTAMP:<iso>)."
  type        = string

  validation {
    condition     = can(regex("^(LATEST|TRIM_HORIZON|AT_TIMESTAMP:.+)$", var.stream_start))
    error_message = "stream_start is LATEST, TRIM_HORIZON or AT_TIMESTAMP:<iso>."
  }
}

variable "bucket_name" {
  description = "DEMAND_BUCKET: the archive bucket (also holds Athena results and Dagster compute logs under their own prefixes)."
  type        = string
}

variable "archive_prefix" {
  description = "DEMAND_PREFIX: the archive's prefix in the bucket."
  type        = string

  validation {
    condition     = length(trim(var.archive_prefix, "/")) > 0 && !contains(["athena-results", "dagster"], trim(var.archive_prefix, "/"))
    error_message = "archive_prefix is not empty and is not athena-results or dagster (those prefixes have their own lifecycle rules)."
  }
}

variable "glue_database" {
  description = "DEMAND_GLUE_DATABASE: the Glue database of the eight tables."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.glue_database))
    error_message = "glue_database is lower-case letters, digits and underscores (Athena-friendly)."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "The workgroup's limit of bytes one query may scan (a check that would scan more is cancelled)."
  type        = number

  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff is at least 10 MB (Athena's minimum)."
  }
}

variable "first_partition" {
  description = "DEMAND_FIRST_PARTITION: the first daily partition (the table's history)."
  type        = string

  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}$", var.first_partition))
    error_message = "first_partition is YYYY-MM-DD."
  }
}

variable "future_days" {
  description = "DEMAND_FUTURE_DAYS: how far ahead partitions reach (sales start months ahead)."
  type        = number

  validation {
    condition     = var.future_days >= 0
    error_message = "future_days is not negative."
  }
}

variable "stream_path" {
  description = "The stream path's tuning (demand_assets/config.py; README, \"Keeping up\"): the sensor requests an archive run once the oldest unrequested change is buffer_seconds old or buffer_changes have landed (DEMAND_BUFFER_SECONDS, DEMAND_BUFFER_CHANGES); a re-delivered change is dropped at landing within dedup_window_minutes of the first (DEMAND_DEDUP_WINDOW_MINUTES); one run archives at most max_batches_per_run batches of a type (DEMAND_MAX_BATCHES_PER_RUN); run monitoring fails an archive run still STARTED after archive_max_runtime_seconds, freeing the stream path's slot after a lost code server (DEMAND_ARCHIVE_MAX_RUNTIME_SECONDS)."
  type = object({
    buffer_seconds              = number
    buffer_changes              = number
    dedup_window_minutes        = number
    max_batches_per_run         = number
    archive_max_runtime_seconds = number
  })

  validation {
    condition     = var.stream_path.buffer_seconds >= 0 && var.stream_path.buffer_changes >= 1 && floor(var.stream_path.buffer_changes) == var.stream_path.buffer_changes
    error_message = "buffer_seconds is not negative; buffer_changes is a whole number, at least 1."
  }

  validation {
    condition     = var.stream_path.dedup_window_minutes > 0
    error_message = "dedup_window_minutes is positive."
  }

  validation {
    condition     = var.stream_path.max_batches_per_run >= 1 && floor(var.stream_path.max_batches_per_run) == var.stream_path.max_batches_per_run
    error_message = "max_batches_per_run is a whole number, at least 1."
  }

  validation {
    condition     = var.stream_path.archive_max_runtime_seconds >= 60
    error_message = "archive_max_runtime_seconds is at least 60: a run must have time to finish."
  }
}

variable "alerts" {
  description = "When the Dagster alert sensors alert (demand_assets/config.py; README, \"Alerts\"): the stream sensor reads more than lag_seconds behind the stream's tip (DEMAND_ALERT_LAG_SECONDS; also the stream's iterator-age alarm); a record type's share of the day's changes that went to errors reaches error_rate (DEMAND_ALERT_ERROR_RATE); a landed batch is still not archived after archive_minutes (DEMAND_ALERT_ARCHIVE_MINUTES)."
  type = object({
    lag_seconds     = number
    error_rate      = number
    archive_minutes = number
  })

  validation {
    condition     = var.alerts.lag_seconds > 0 && var.alerts.archive_minutes > 0
    error_message = "lag_seconds and archive_minutes are positive."
  }

  validation {
    condition     = var.alerts.error_rate > 0 && var.alerts.error_rate < 1
    error_message = "error_rate is a share between 0 and 1."
  }
}

variable "alarms" {
  description = "The CloudWatch alarms' thresholds (alerts.tf): the ECS services' CPU and memory (percent), the database's CPU (percent), free storage (GB) and connections."
  type = object({
    ecs_cpu_percent          = number
    ecs_memory_percent       = number
    database_cpu_percent     = number
    database_free_storage_gb = number
    database_connections     = number
  })

  validation {
    condition = alltrue([
      for percent in [var.alarms.ecs_cpu_percent, var.alarms.ecs_memory_percent, var.alarms.database_cpu_percent] :
      percent > 0 && percent <= 100
    ])
    error_message = "The percentages are between 0 and 100."
  }

  validation {
    condition     = var.alarms.database_free_storage_gb > 0 && var.alarms.database_connections >= 1
    error_message = "database_free_storage_gb is positive; database_connections is at least 1."
  }
}

# Retention -------------------------------------------------------------------------------------

variable "landing_transition_days" {
  description = "Days after which landed batches move to STANDARD_IA and then GLACIER_IR (both read instantly: rebuilds still work). They never expire: see deploy/README.md."
  type = object({
    standard_ia = number
    glacier_ir  = number
  })

  validation {
    condition     = var.landing_transition_days.standard_ia >= 30 && var.landing_transition_days.glacier_ir >= var.landing_transition_days.standard_ia + 30
    error_message = "standard_ia is at least 30 days, glacier_ir at least 30 days later."
  }
}

variable "errors_expiration_days" {
  description = "Days error documents are kept for replay."
  type        = number

  validation {
    condition     = var.errors_expiration_days > 30
    error_message = "errors_expiration_days is more than 30 (they move to STANDARD_IA at 30)."
  }
}

variable "athena_results_expiration_days" {
  description = "Days Athena query results are kept."
  type        = number

  validation {
    condition     = var.athena_results_expiration_days >= 1
    error_message = "athena_results_expiration_days is at least 1."
  }
}

variable "compute_logs_expiration_days" {
  description = "Days the runs' stdout/stderr (Dagster compute logs) are kept."
  type        = number

  validation {
    condition     = var.compute_logs_expiration_days >= 1
    error_message = "compute_logs_expiration_days is at least 1."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object's previous version is kept (the bucket is versioned)."
  type        = number

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days is at least 1."
  }
}

variable "log_retention_days" {
  description = "Days the CloudWatch logs of the ECS tasks are kept."
  type        = number

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days is one of CloudWatch Logs' retention periods."
  }
}

# Dagster ---------------------------------------------------------------------------------------

variable "postgres" {
  description = "The RDS PostgreSQL instance of Dagster's run, event log and schedule storage."
  type = object({
    engine_version        = string
    instance_class        = string
    allocated_storage_gb  = number
    multi_az              = bool
    backup_retention_days = number
    deletion_protection   = bool
  })
}

variable "task_sizes" {
  description = "Fargate CPU units and memory (MiB) of each task."
  type = object({
    webserver   = object({ cpu = number, memory = number })
    daemon      = object({ cpu = number, memory = number })
    code_server = object({ cpu = number, memory = number })
    run         = object({ cpu = number, memory = number })
  })

  # The code server runs the stream sensor and, as its subprocesses, the archive_batches runs
  # (deploy/README.md, "Which launcher runs what"): a tick peaks near 590 MiB, a run near
  # 680 MiB (README, Load), on top of the proxy, and the two overlap.
  validation {
    condition     = var.task_sizes.code_server.cpu >= 1024 && var.task_sizes.code_server.memory >= 2048
    error_message = "code_server needs at least 1 vCPU (1024) and 2 GiB (2048): it runs the sensor and the archive runs."
  }
}

variable "webserver_count" {
  description = "Tasks of the webserver service."
  type        = number

  validation {
    condition     = var.webserver_count >= 1
    error_message = "webserver_count is at least 1."
  }
}
