"""``python -m deriva_ml.execution.runner``: the ``deriva-ml-run`` command."""

import sys

from deriva_ml.execution.runner import main

sys.exit(main())
