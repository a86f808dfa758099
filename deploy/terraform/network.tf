# The VPC is the environment's own (found by name); this stack adds security groups, the
# internal load balancer of the Dagster UI and the private DNS name of the code server.

data "aws_vpc" "this" {
  tags = {
    Name = var.vpc_name
  }
}

data "aws_subnets" "private" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.this.id]
  }

  tags = var.private_subnet_tags
}

data "aws_acm_certificate" "webserver" {
  domain      = var.webserver_certificate_domain
  statuses    = ["ISSUED"]
  most_recent = true
}

# Security groups -------------------------------------------------------------------------------

resource "aws_security_group" "load_balancer" {
  name        = "${local.name}-ui-lb"
  description = "The Dagster UI load balancer: HTTPS in from the allowed networks"
  vpc_id      = data.aws_vpc.this.id
}

resource "aws_security_group" "tasks" {
  name        = "${local.name}-tasks"
  description = "The Dagster ECS tasks: webserver, daemon, code server, runs"
  vpc_id      = data.aws_vpc.this.id
}

resource "aws_security_group" "postgres" {
  name        = "${local.name}-postgres"
  description = "Dagster's PostgreSQL: reachable from the Dagster tasks only"
  vpc_id      = data.aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "load_balancer_https" {
  for_each = toset(var.webserver_ingress_cidrs)

  security_group_id = aws_security_group.load_balancer.id
  description       = "HTTPS from an allowed network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "load_balancer_to_webserver" {
  security_group_id            = aws_security_group.load_balancer.id
  description                  = "To the webserver tasks"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = local.webserver_port
  to_port                      = local.webserver_port
}

resource "aws_vpc_security_group_ingress_rule" "webserver_from_load_balancer" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "The UI, from the load balancer"
  referenced_security_group_id = aws_security_group.load_balancer.id
  ip_protocol                  = "tcp"
  from_port                    = local.webserver_port
  to_port                      = local.webserver_port
}

resource "aws_vpc_security_group_ingress_rule" "code_server_from_tasks" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "gRPC to the code server, from the webserver and the daemon"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = local.code_server_port
  to_port                      = local.code_server_port
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_code_server" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "gRPC to the code server"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = local.code_server_port
  to_port                      = local.code_server_port
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_postgres" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Dagster's storage"
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_aws_apis" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to the AWS APIs (S3, Kinesis, Glue, Athena, ECS, ECR, logs) through NAT or endpoints"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "postgres_from_tasks" {
  security_group_id            = aws_security_group.postgres.id
  description                  = "From the Dagster tasks"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# The Dagster UI: an internal HTTPS load balancer ----------------------------------------------

resource "aws_lb" "webserver" {
  name                       = "${local.name}-ui"
  internal                   = true
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.load_balancer.id]
  subnets                    = data.aws_subnets.private.ids
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "webserver" {
  name                 = "${local.name}-ui"
  port                 = local.webserver_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = data.aws_vpc.this.id
  deregistration_delay = 30

  health_check {
    path    = "/server_info"
    matcher = "200"
  }
}

resource "aws_lb_listener" "webserver" {
  load_balancer_arn = aws_lb.webserver.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = data.aws_acm_certificate.webserver.arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.webserver.arn
  }
}

# The code server's name: code.<name>.internal --------------------------------------------------

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = local.namespace
  description = "demand-assets ${var.environment}: the code server"
  vpc         = data.aws_vpc.this.id
}

resource "aws_service_discovery_service" "code_server" {
  name = "code"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      ttl  = 10
      type = "A"
    }
  }
}
