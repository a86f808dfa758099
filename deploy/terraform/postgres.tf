# Dagster's run, event log and schedule storage (deploy/dagster.yaml: storage.postgres).

resource "random_password" "postgres" {
  length  = 40
  special = false # goes into a connection URL
}

resource "aws_secretsmanager_secret" "postgres" {
  name                    = "${local.name}/dagster-postgres"
  description             = "Dagster's PostgreSQL login (ECS injects the password as DAGSTER_PG_PASSWORD)"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "postgres" {
  secret_id = aws_secretsmanager_secret.postgres.id
  secret_string = jsonencode({
    username = local.postgres_user
    password = random_password.postgres.result
  })
}

resource "aws_db_subnet_group" "dagster" {
  name       = "${local.name}-dagster"
  subnet_ids = data.aws_subnets.private.ids
}

resource "aws_db_parameter_group" "dagster" {
  name   = "${local.name}-dagster-pg${split(".", var.postgres.engine_version)[0]}"
  family = "postgres${split(".", var.postgres.engine_version)[0]}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "dagster" {
  identifier     = "${local.name}-dagster"
  engine         = "postgres"
  engine_version = var.postgres.engine_version
  instance_class = var.postgres.instance_class

  allocated_storage     = var.postgres.allocated_storage_gb
  max_allocated_storage = var.postgres.allocated_storage_gb * 4
  storage_type          = "gp3"
  storage_encrypted     = true

  db_name  = local.postgres_db
  username = local.postgres_user
  password = random_password.postgres.result

  db_subnet_group_name   = aws_db_subnet_group.dagster.name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  parameter_group_name   = aws_db_parameter_group.dagster.name
  publicly_accessible    = false
  multi_az               = var.postgres.multi_az

  backup_retention_period    = var.postgres.backup_retention_days
  copy_tags_to_snapshot      = true
  deletion_protection        = var.postgres.deletion_protection
  skip_final_snapshot        = false
  final_snapshot_identifier  = "${local.name}-dagster-final"
  auto_minor_version_upgrade = true
  apply_immediately          = false
}
