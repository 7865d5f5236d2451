"""Dashboard page: Trends."""

from dashboard.views import show, trends

show(trends, "Trends")
