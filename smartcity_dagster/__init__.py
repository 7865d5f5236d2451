"""smartcity_dagster."""
