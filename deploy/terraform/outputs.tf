output "image_repository" {
  description = "Push the image here, tagged with its commit (deploy/README.md)."
  value       = aws_ecr_repository.image.repository_url
}

output "dagster_ui" {
  description = "The Dagster UI (internal)."
  value       = "https://${aws_lb.webserver.dns_name}"
}

output "cluster" {
  value = aws_ecs_cluster.this.name
}

output "one_off_task" {
  description = "For `aws ecs run-task` with the daemon's task definition (e.g. `dagster instance migrate`)."
  value = {
    task_definition = aws_ecs_task_definition.daemon.family
    container       = "daemon"
    network_configuration = {
      awsvpcConfiguration = {
        subnets        = local.network_configuration.subnets
        securityGroups = local.network_configuration.security_groups
        assignPublicIp = "DISABLED"
      }
    }
  }
}

output "archive" {
  description = "The DEMAND_* values the code server and the runs get."
  value       = local.demand_environment
}

output "alerts_topic" {
  description = "Subscribe to it to receive the alerts and alarms (deploy/README.md, \"Alerts and alarms\")."
  value       = aws_sns_topic.alerts.arn
}

output "stream_arn" {
  value = aws_kinesis_stream.changes.arn
}
