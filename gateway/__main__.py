import sys

import uvicorn

from confbook_common.logging_setup import configure_logging
from confbook_common.settings import ConfigError, Env
from gateway.config import GatewayConfig
from gateway.http_server import uvicorn_settings

try:
    configure_logging("gateway")
    config = GatewayConfig.from_env()
    workers = Env().workers()
except ConfigError as error:
    sys.exit(f"gateway: {error}")
# With workers > 1, uvicorn's parent binds the port, starts that many worker processes (each
# building the app from the environment), restarts one that dies and stops them on SIGTERM.
uvicorn.run(
    "gateway.app:create_app_from_env",
    factory=True,
    workers=workers,
    # The C HTTP parser and event loop: several times cheaper per request than the pure-Python ones.
    loop="uvloop",
    host=config.host,
    port=config.port,
    log_config=None,
    access_log=False,
    # Nothing sits in front of the gateway by default; trusting forwarded headers costs a parse per request.
    proxy_headers=False,
    # httptools, and what bounds slow, idle and too many connections.
    **uvicorn_settings(config),
)
