"""Events over RabbitMQ: a transactional outbox on the way out, an idempotent inbox on the way in."""
