"""`python -m simulator …`: the city simulator alone, the same command as `smartcity simulate`."""

from simulator.cli import simulate_command
from smartcity.commands import configure_logging, run

configure_logging(verbose=False)
run(simulate_command)
