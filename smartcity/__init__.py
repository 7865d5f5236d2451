"""smartcity."""
