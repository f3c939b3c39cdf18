import sys

import uvicorn

from confbook_common.logging_setup import configure_logging
from confbook_common.settings import ConfigError
from gateway.app import create_app
from gateway.config import GatewayConfig

try:
    configure_logging("gateway")
    config = GatewayConfig.from_env()
except ConfigError as error:
    sys.exit(f"gateway: {error}")
uvicorn.run(create_app(config), host=config.host, port=config.port, log_config=None, access_log=False)
