"""Entry point Pulumi runs for every environment (Pulumi.yaml: main: stacks/)."""

import pulumi

from virtstack.errors import VirtstackError
from virtstack.program import main, tune_collector

tune_collector()
try:
    main()
except VirtstackError as exc:
    # RunError prints just the message: the spec's problems, one line each, no traceback.
    raise pulumi.RunError(str(exc)) from None
