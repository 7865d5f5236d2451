"""`python -m smartcity …` runs the same command as the `smartcity` console script."""

from smartcity.cli import main

main()
