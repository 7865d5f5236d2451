"""`python -m smartcity_ops …` runs the same command as the `smartcity` console script."""

from smartcity_ops.cli import main

main()
