import uvicorn

from confbook_common.logging_setup import configure_logging
from gateway.app import create_app
from gateway.config import GatewayConfig

configure_logging("gateway")
config = GatewayConfig.from_env()
uvicorn.run(create_app(config), host=config.host, port=config.port, log_config=None, access_log=False)
