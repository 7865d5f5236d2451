"""Dashboard page: Smart City: overview."""

from dashboard.views import overview, show

show(overview, "Smart City: overview")
