"""``python -m deriva_ml.cli``: the ``deriva-ml`` command."""

import sys

from deriva_ml.cli import main

sys.exit(main())
