"""Read models for people and metrics: monitoring figures shared by REST, GraphQL and Prometheus."""
