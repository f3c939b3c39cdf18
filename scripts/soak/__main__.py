import sys

from scripts.soak.main import main

sys.exit(main())
