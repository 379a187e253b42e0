"""``python -m kcourse ...`` is ``kcourse ...``."""
import sys

from kcourse.cli import main

sys.exit(main())
