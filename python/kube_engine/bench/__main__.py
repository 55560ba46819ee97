"""`python -m kube_engine.bench`: the lab's command (see :mod:`kube_engine.bench.cli`)."""

import sys

from kube_engine.bench.cli import main

sys.exit(main())
