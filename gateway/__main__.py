"""`python -m gateway`: the HTTP gateway, as WORKERS processes sharing one port.

Each worker is a single uvicorn server on its own SO_REUSEPORT socket, so the
gateway's processes are started, restarted and stopped the same way as the
services' (confbook_common.processes): by supervisord under `make up`, or by
this command's own parent process when started directly.
"""

import socket
import sys

from confbook_common import metrics_dir

# Before anything imports prometheus_client, which chooses its storage on import.
metrics_dir.prepare("gateway")

import uvicorn  # noqa: E402

from confbook_common import processes, tracing  # noqa: E402
from confbook_common.logging_setup import configure_logging  # noqa: E402
from confbook_common.metrics import start_metrics_server  # noqa: E402
from confbook_common.settings import ConfigError, Env  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.config import GatewayConfig  # noqa: E402
from gateway.http_server import BACKLOG, uvicorn_settings  # noqa: E402

_SHUTDOWN_GRACE_SECONDS = 10.0


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Worker processes share the port; the kernel spreads connections among them.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def _serve(config: GatewayConfig) -> None:
    tracing.configure_tracing("gateway")
    start_metrics_server("gateway")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            # The C event loop: several times cheaper per request than the pure-Python one.
            loop="uvloop",
            log_config=None,
            access_log=False,
            # Nothing sits in front of the gateway by default; trusting forwarded headers costs a parse per request.
            proxy_headers=False,
            timeout_graceful_shutdown=int(_SHUTDOWN_GRACE_SECONDS / 2),
            # httptools, and what bounds slow, idle and too many connections.
            **uvicorn_settings(config),
        )
    )
    server.run(sockets=[_listening_socket(config.host, config.port)])


def main() -> None:
    try:
        configure_logging("gateway")
        config = GatewayConfig.from_env()
        workers = Env().workers()
    except ConfigError as error:
        sys.exit(f"gateway: {error}")
    processes.serve_as_workers("gateway", workers, lambda: _serve(config), grace_seconds=_SHUTDOWN_GRACE_SECONDS)


main()
