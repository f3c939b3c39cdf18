"""What the soak needs of a running stack: where to send requests, how to hurt it, where its data is.

Killed programs come back by themselves (a supervisor restarts them); the soak only waits for /readyz.
"""

from __future__ import annotations

from typing import Protocol

# What `kill` accepts: each service (all of its replicas), the gateway and the dev token issuer.
ISSUER = "issuer"
PROGRAMS = ("conference", "booking", "waitlist", "gateway", ISSUER)
SERVICES = ("conference", "booking", "waitlist")


class SoakStack(Protocol):
    @property
    def base_url(self) -> str:
        """The gateway, e.g. http://127.0.0.1:8080."""
        ...

    @property
    def amqp_url(self) -> str:
        """The broker, to count the messages left in the queues."""
        ...

    @property
    def window_seconds(self) -> int:
        """CONFIRMATION_WINDOW_SECONDS of the running services (it names the offer timer queue)."""
        ...

    def database_url(self, service: str) -> str:
        """A login that can read the service's schema."""
        ...

    @property
    def issuer_url(self) -> str:
        """The dev issuer whose tokens the stack accepts."""
        ...

    def token(self, subject: str, role: str = "attendee", ttl: int = 3600) -> str:
        """An access token for `subject` with `role` (attendee, organizer, admin) from the stack's dev issuer."""
        ...

    def kill(self, name: str) -> None:
        """SIGKILL every process of one of PROGRAMS; returns once they are dead. It is started again without
        the caller's help."""
        ...

    def stop_broker(self) -> None:
        """Stop RabbitMQ; durable queues and persistent messages survive."""
        ...

    def start_broker(self) -> None:
        """Start RabbitMQ again; returns once it accepts connections."""
        ...

    def pause_database(self) -> None:
        """SIGSTOP PostgreSQL, every backend with it."""
        ...

    def resume_database(self) -> None: ...

    def restarts(self) -> int:
        """How many processes the supervisor has started again after they died unasked."""
        ...
