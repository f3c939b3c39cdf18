import signal
import sys
from types import FrameType

from scripts.soak.main import main


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# SIGTERM stops the run the way Ctrl-C does, through the same cleanup.
signal.signal(signal.SIGTERM, _interrupt)
sys.exit(main())
