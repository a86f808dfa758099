# Dagster on ECS Fargate: three services (webserver, daemon, code server) from one image, and
# the task definition the EcsRunLauncher starts for every run but the stream path's (those run
# in the code server: deploy/dagster.yaml, demand_assets/deploy_launcher.py).

resource "aws_ecr_repository" "image" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE" # a tag is a commit: rolling back to it gives the same bytes

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "image" {
  repository = aws_ecr_repository.image.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 50 newest images: the roll-back window"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "this" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "tasks" {
  for_each = toset(["webserver", "daemon", "code-server", "runs"])

  name              = "/ecs/${local.name}/${each.key}"
  retention_in_days = var.log_retention_days
}

locals {
  dagster_env_list = [for name, value in local.dagster_environment : { name = name, value = value }]
  demand_env_list  = [for name, value in local.demand_environment : { name = name, value = value }]
  alert_env_list   = [for name, value in local.alert_environment : { name = name, value = value }]
  secret_list      = [for name, value_from in local.dagster_secrets : { name = name, valueFrom = value_from }]

  # The EcsRunLauncher's task definition (deploy/dagster.yaml). The webserver and the daemon,
  # which build the launcher, get the exact revision: a change to the run task definition then
  # redeploys them, and a roll-back of theirs brings its own revision back. The code server and
  # the runs never launch a run; they get the family (the run's own revision cannot name itself).
  launcher_env_list = concat(local.dagster_env_list, [
    { name = "DAGSTER_RUN_TASK_DEFINITION", value = aws_ecs_task_definition.run.arn },
  ])
  code_env_list = concat(local.dagster_env_list, local.demand_env_list, local.alert_env_list, [
    { name = "DAGSTER_RUN_TASK_DEFINITION", value = local.run_family },
  ])

  log_configuration = {
    for group, log_group in aws_cloudwatch_log_group.tasks : group => {
      logDriver = "awslogs"
      options = {
        awslogs-group         = log_group.name
        awslogs-region        = var.region
        awslogs-stream-prefix = group
      }
    }
  }

  # Each process's command; the image's default command is the code server's.
  commands = {
    webserver = [
      "dagster-webserver", "--host", "0.0.0.0", "--port", tostring(local.webserver_port),
      "--workspace", local.workspace_file,
    ]
    daemon = ["dagster-daemon", "run", "--workspace", local.workspace_file]
    code_server = [
      "dagster", "code-server", "start", "--host", "0.0.0.0",
      "--port", tostring(local.code_server_port), "--module-name", local.definitions_module,
      "--location-name", local.code_location, "--container-image", local.image,
    ]
  }

  health_checks = {
    webserver = [
      "CMD", "python", "-c",
      "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.webserver_port}/server_info', timeout=5)",
    ]
    daemon      = ["CMD", "dagster-daemon", "liveness-check"]
    code_server = ["CMD", "dagster", "api", "grpc-health-check", "--port", tostring(local.code_server_port)]
  }
}

# Task definitions ------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "webserver" {
  family                   = "${local.name}-webserver"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes.webserver.cpu
  memory                   = var.task_sizes.webserver.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task["webserver"].arn
  skip_destroy             = true # keep old revisions: ECS can roll back to them

  container_definitions = jsonencode([{
    name         = "webserver"
    image        = local.image
    essential    = true
    command      = local.commands.webserver
    environment  = local.launcher_env_list
    secrets      = local.secret_list
    portMappings = [{ containerPort = local.webserver_port, protocol = "tcp" }]
    healthCheck = {
      command     = local.health_checks.webserver
      interval    = 30
      timeout     = 10
      retries     = 3
      startPeriod = 120
    }
    logConfiguration = local.log_configuration["webserver"]
  }])
}

resource "aws_ecs_task_definition" "daemon" {
  family                   = "${local.name}-daemon"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes.daemon.cpu
  memory                   = var.task_sizes.daemon.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task["daemon"].arn
  skip_destroy             = true

  container_definitions = jsonencode([{
    name        = "daemon"
    image       = local.image
    essential   = true
    command     = local.commands.daemon
    environment = local.launcher_env_list
    secrets     = local.secret_list
    healthCheck = {
      command     = local.health_checks.daemon
      interval    = 60
      timeout     = 30
      retries     = 3
      startPeriod = 180
    }
    logConfiguration = local.log_configuration["daemon"]
  }])
}

resource "aws_ecs_task_definition" "code_server" {
  family                   = "${local.name}-code-server"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes.code_server.cpu
  memory                   = var.task_sizes.code_server.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task["code-server"].arn
  skip_destroy             = true

  container_definitions = jsonencode([{
    name         = "code-server"
    image        = local.image
    essential    = true
    command      = local.commands.code_server
    environment  = local.code_env_list
    secrets      = local.secret_list
    portMappings = [{ containerPort = local.code_server_port, protocol = "tcp" }]
    # On SIGTERM (a deployment, a scale-in) the code server takes no new run and waits for its
    # archive_batches run, a subprocess, to finish: give it Fargate's longest wait before the
    # SIGKILL. A run killed anyway is failed by run monitoring (its max runtime) and redone.
    stopTimeout = 120
    healthCheck = {
      command     = local.health_checks.code_server
      interval    = 30
      timeout     = 10
      retries     = 3
      startPeriod = 180
    }
    logConfiguration = local.log_configuration["code-server"]
  }])
}

# The EcsRunLauncher (deploy/dagster.yaml) starts this for each run not of the stream path and
# sets the command.
resource "aws_ecs_task_definition" "run" {
  family                   = local.run_family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes.run.cpu
  memory                   = var.task_sizes.run.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task["run"].arn
  skip_destroy             = true

  container_definitions = jsonencode([{
    name             = local.run_container
    image            = local.image
    essential        = true
    environment      = local.code_env_list
    secrets          = local.secret_list
    logConfiguration = local.log_configuration["runs"]
  }])
}

# Services --------------------------------------------------------------------------------------

locals {
  network_configuration = {
    subnets         = data.aws_subnets.private.ids
    security_groups = [aws_security_group.tasks.id]
  }
}

resource "aws_ecs_service" "code_server" {
  name            = "code-server"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.code_server.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  # The new code server is up before the old one stops: the daemon always has one to ask.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.network_configuration.subnets
    security_groups  = local.network_configuration.security_groups
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.code_server.arn
  }
}

resource "aws_ecs_service" "daemon" {
  name            = "daemon"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.daemon.arn
  desired_count   = 1
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  # Exactly one daemon: the old one stops before the new one starts.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.network_configuration.subnets
    security_groups  = local.network_configuration.security_groups
    assign_public_ip = false
  }

  depends_on = [aws_ecs_service.code_server]
}

resource "aws_ecs_service" "webserver" {
  name                              = "webserver"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.webserver.arn
  desired_count                     = var.webserver_count
  launch_type                       = "FARGATE"
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = 120

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.network_configuration.subnets
    security_groups  = local.network_configuration.security_groups
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.webserver.arn
    container_name   = "webserver"
    container_port   = local.webserver_port
  }

  depends_on = [aws_lb_listener.webserver, aws_ecs_service.code_server]
}
