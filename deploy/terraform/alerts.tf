# Alerts (README, "Alerts"; deploy/README.md, "Alerts and alarms"): one SNS topic that the
# Dagster alert sensors publish to (from the code server, which evaluates them) and that
# CloudWatch alarms on the ECS services, the database and the stream publish to. Who receives
# them is the operator's choice: no subscription is managed here.

resource "aws_kms_key" "alerts" {
  description             = "${local.name}: the alerts topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alerts_key.json
}

resource "aws_kms_alias" "alerts" {
  name          = "alias/${local.name}-alerts"
  target_key_id = aws_kms_key.alerts.key_id
}

# The account's default key policy, and CloudWatch: an alarm can publish to an encrypted topic
# only if its service may use the key (AWS managed keys do not allow it).
data "aws_iam_policy_document" "alerts_key" {
  statement {
    sid       = "TheAccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy: this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsEncryptTheirMessages"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"] # in a key policy: this key

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic" "alerts" {
  name              = "${local.name}-alerts"
  kms_master_key_id = aws_kms_key.alerts.arn
}

# The code server publishes by its role's grant (iam.tf); the alarms of this deployment by this
# policy; nothing over plain HTTP.
data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "TheAlarmsOfThisDeploymentPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:${local.name}-*"]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

locals {
  # What demand_assets/config.py reads for the alert sensors (README, "Configuration"); the
  # code server and the runs get these with the DEMAND_* of locals.tf (ecs.tf). The alerts'
  # links start with the UI's address, as the dagster_ui output gives it.
  alert_environment = {
    DEMAND_ALERT_TOPIC_ARN       = aws_sns_topic.alerts.arn
    DEMAND_UI_URL                = "https://${aws_lb.webserver.dns_name}"
    DEMAND_ALERT_LAG_SECONDS     = tostring(var.alerts.lag_seconds)
    DEMAND_ALERT_ERROR_RATE      = tostring(var.alerts.error_rate)
    DEMAND_ALERT_ARCHIVE_MINUTES = tostring(var.alerts.archive_minutes)
  }

  alarm_actions = [aws_sns_topic.alerts.arn]
  alarm_runbook = "Runbook: deploy/README.md, Alerts and alarms."

  # The services the alarms watch, and how many tasks each runs when healthy.
  alarmed_services = {
    webserver     = { name = aws_ecs_service.webserver.name, tasks = var.webserver_count }
    daemon        = { name = aws_ecs_service.daemon.name, tasks = 1 }
    "code-server" = { name = aws_ecs_service.code_server.name, tasks = 1 }
  }
}

# ECS services: CPU and memory (AWS/ECS), and tasks running (Container Insights, enabled on the
# cluster). No data for the task count means no task reports: breaching.

resource "aws_cloudwatch_metric_alarm" "service_cpu" {
  for_each = local.alarmed_services

  alarm_name          = "${local.name}-${each.key}-cpu"
  alarm_description   = "The ${each.key} service's CPU is over ${var.alarms.ecs_cpu_percent}% for 15 minutes. ${local.alarm_runbook}"
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = each.value.name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.alarms.ecs_cpu_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "service_memory" {
  for_each = local.alarmed_services

  alarm_name          = "${local.name}-${each.key}-memory"
  alarm_description   = "The ${each.key} service's memory is over ${var.alarms.ecs_memory_percent}% for 15 minutes. ${local.alarm_runbook}"
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = each.value.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.alarms.ecs_memory_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "service_tasks" {
  for_each = local.alarmed_services

  alarm_name          = "${local.name}-${each.key}-tasks"
  alarm_description   = "The ${each.key} service has run fewer than ${each.value.tasks} tasks for 5 minutes. ${local.alarm_runbook}"
  namespace           = "ECS/ContainerInsights"
  metric_name         = "RunningTaskCount"
  dimensions          = { ClusterName = aws_ecs_cluster.this.name, ServiceName = each.value.name }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 5
  threshold           = each.value.tasks
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The database: CPU, free storage, connections (AWS/RDS).

resource "aws_cloudwatch_metric_alarm" "database_cpu" {
  alarm_name          = "${local.name}-database-cpu"
  alarm_description   = "Dagster's database CPU is over ${var.alarms.database_cpu_percent}% for 15 minutes. ${local.alarm_runbook}"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.dagster.identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.alarms.database_cpu_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "database_storage" {
  alarm_name          = "${local.name}-database-storage"
  alarm_description   = "Dagster's database has less than ${var.alarms.database_free_storage_gb} GB free. ${local.alarm_runbook}"
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.dagster.identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.alarms.database_free_storage_gb * 1024 * 1024 * 1024
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "database_connections" {
  alarm_name          = "${local.name}-database-connections"
  alarm_description   = "Dagster's database has more than ${var.alarms.database_connections} connections for 15 minutes. ${local.alarm_runbook}"
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.dagster.identifier }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.alarms.database_connections
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The stream: how old the records the sensor reads are. The sensor calls GetRecords on every
# shard every tick, traffic or not, so no data means nobody reads the stream (the code server or
# the daemon is down, the sensor stopped), which the sensors themselves cannot report.
resource "aws_cloudwatch_metric_alarm" "stream_iterator_age" {
  alarm_name          = "${local.name}-stream-iterator-age"
  alarm_description   = "The stream sensor reads records older than ${var.alerts.lag_seconds} s, or nothing reads the stream, for 15 minutes. ${local.alarm_runbook}"
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = aws_kinesis_stream.changes.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.alerts.lag_seconds * 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
