"""Dashboard page: Vehicle trips."""

from dashboard.views import show, vehicle_page

show(vehicle_page, "Vehicle trips")
