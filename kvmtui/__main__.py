import sys

from kvmtui.cli import main

sys.exit(main())
