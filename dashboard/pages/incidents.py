"""Dashboard page: Incidents."""

from dashboard.views import incidents_page, show

show(incidents_page, "Incidents")
