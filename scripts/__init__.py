"""Operating the stack on one machine: local PostgreSQL and RabbitMQ, migrations, processes."""
