"""The Streamlit dashboard over the warehouse's gold tables: overview, map, trends, incidents, vehicles.

Run with ``smartcity dashboard`` (or ``smartcity run``, which starts everything). Each page is a file under
``dashboard/pages/`` drawing one view of :mod:`dashboard.views`.
"""

from __future__ import annotations

import streamlit as st

from smartcity.errors import ConfigError
from smartcity.settings import load_settings

st.set_page_config(page_title="Smart City", page_icon=":material/location_city:", layout="wide")
try:
    load_settings()
except ConfigError as problem:
    st.error(f"**Configuration problem.** {problem}")
    st.stop()
st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("pages/map.py", title="Map", icon=":material/map:"),
    st.Page("pages/trends.py", title="Trends", icon=":material/show_chart:"),
    st.Page("pages/incidents.py", title="Incidents", icon=":material/emergency:"),
    st.Page("pages/vehicles.py", title="Vehicles", icon=":material/directions_car:"),
]).run()  # fmt: skip
