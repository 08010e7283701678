"""``python -m lstm_ref.cli``: the ``lstm-ref`` command."""

import sys

from lstm_ref.cli import main

sys.exit(main())
