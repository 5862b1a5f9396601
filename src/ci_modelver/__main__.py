"""Allow ``python -m ci_modelver``."""

from ci_modelver.cli import main

raise SystemExit(main())
