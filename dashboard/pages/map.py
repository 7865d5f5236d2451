"""Dashboard page: City map."""

from dashboard.views import city_map, show

show(city_map, "City map")
