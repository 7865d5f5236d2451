"""The dashboard's pages: what each shows, drawn with Streamlit from the queries in :mod:`dashboard.data`.

Every page reloads itself at the refresh interval, and queries are cached for just under it (shared by every
viewer), so each reload gets data at most that old; a missing or unreachable warehouse shows a message that
says what to run or check instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pydeck as pdk
import streamlit as st

from dashboard import data
from dashboard.warehouse import NoData, WarehouseUnavailable
from smartcity.settings import load_settings
from smartcity.zones import ZONES, road, zone_areas

CONGESTION_COLOURS = {
    "free": [46, 160, 67],
    "moderate": [240, 200, 40],
    "heavy": [240, 130, 30],
    "severe": [200, 30, 30],
}
NO_VALUE = "n/a"
CORRIDOR_VIEW = pdk.ViewState(latitude=51.95, longitude=-1.0, zoom=7.2)


def run_query(name: str, url: str, *args: object) -> object:
    """Any ``dashboard.data`` query; wrapped below as ``cached``, cached by its arguments for the refresh interval."""
    return getattr(data, name)(url, *args)


def warehouse_problem(render: Callable[[str], None], url: str) -> None:
    """Render a page, turning a missing or unreachable warehouse into a friendly explanation."""
    try:
        render(url)
    except NoData as error:
        st.info(
            "**No data in the warehouse yet.** Start the platform with `make run` (or `smartcity run`): the "
            "simulator produces events, the stream lands them, and Dagster loads each hour into the warehouse "
            f"within a few minutes.\n\nDetail: {error}",
            icon=":material/hourglass_empty:",
        )
    except WarehouseUnavailable as error:
        st.error(
            "**The warehouse cannot be reached.** Check `SMARTCITY_WAREHOUSE_URL` (`smartcity config`) and that "
            f"the database is running.\n\nDetail: {error}",
            icon=":material/cloud_off:",
        )


def freshness_line(as_of: datetime | None, stale_minutes: int) -> None:
    if as_of is None:
        st.info("No events in the warehouse yet.")
        return
    age = datetime.now(UTC).replace(tzinfo=None) - as_of
    when = f"{_age(age)} ago" if age >= timedelta(0) else f"{_age(-age)} ahead of this clock"
    text = f"Data as of **{as_of:%Y-%m-%d %H:%M:%S} UTC** ({when})"
    if age > timedelta(minutes=stale_minutes):
        st.warning(f"{text}: older than {stale_minutes} minutes. Is the pipeline running? (`smartcity status`)")
    else:
        st.success(text)


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    return (
        f"{seconds // 3600} h {seconds % 3600 // 60} min"
        if seconds >= 3600
        else f"{seconds // 60} min {seconds % 60} s"
    )


def overview(url: str) -> None:
    kpis: data.Kpis = cached("kpis", url)
    freshness_line(kpis.data_as_of, load_settings().dashboard_stale_minutes)
    hour = f"{kpis.latest_hour:%H:%M} UTC hour" if kpis.latest_hour else "latest hour"
    tiles = [*st.columns(3), *st.columns(3)]  # six in a row cut their values short at common widths
    tiles[0].metric("Vehicles reporting", f"{kpis.vehicles_reporting:,}", help=f"distinct vehicles, {hour}")
    tiles[1].metric("Mean speed", NO_VALUE if kpis.mean_speed_kmh is None else f"{kpis.mean_speed_kmh:.1f} km/h",
                    help=f"mean of every vehicle report, {hour}")  # fmt: skip
    tiles[2].metric("Open incidents", f"{kpis.open_incidents:,}", help="reported and not yet resolved")
    tiles[3].metric("Worst air quality", NO_VALUE if kpis.worst_aqi is None else f"AQI {kpis.worst_aqi}",
                    help=f"highest AQI of any station, {hour}")  # fmt: skip
    tiles[4].metric("Events, latest hour", f"{kpis.events_last_hour:,}", help=f"all five streams, {hour}")
    tiles[5].metric("Quarantined, 24 h", f"{kpis.quarantined_last_day:,}",
                    help="records the stream rejected (malformed, wrong type…), by ingest time")  # fmt: skip
    span = cached("hour_range", url)
    if span:
        start = span[1] - timedelta(hours=23)
        traffic = cached("traffic_trend", url, start, span[1], [])
        st.subheader("Last 24 hours")
        st.bar_chart(traffic, x="hour_start", y="vehicles_seen", x_label="hour (UTC)", y_label="vehicles seen")
    rejected = cached("quarantine", url)
    if len(rejected):
        st.subheader("Quarantined records, last 24 hours")
        st.bar_chart(rejected, x="reason", y="records", color="stream", x_label="reason", y_label="records")


def corridor_layers() -> list[pdk.Layer]:
    """The corridor drawn from the project's own geometry, under the data: each zone's area, the road, the
    junctions and their names. Offline, where no base tiles load, the map still says where things are."""
    areas = pd.DataFrame([{"zone": name, "polygon": polygon} for name, polygon in zone_areas().items()])
    junctions = pd.DataFrame([zone._asdict() for zone in ZONES]).rename(columns={"name": "zone"})
    return [
        pdk.Layer("PolygonLayer", areas, get_polygon="polygon", get_fill_color=[90, 110, 140, 18],
                  get_line_color=[90, 110, 140, 140], line_width_min_pixels=1, stroked=True, id="zones"),
        pdk.Layer("PathLayer", pd.DataFrame({"path": [road()]}), get_path="path", get_color=[110, 110, 110],
                  width_min_pixels=3, id="road"),
        pdk.Layer("ScatterplotLayer", junctions, get_position=["longitude", "latitude"], get_fill_color=[60, 60, 60],
                  radius_min_pixels=4, id="junctions"),
        pdk.Layer("TextLayer", junctions, get_position=["longitude", "latitude"], get_text="zone", get_size=13,
                  get_color=[40, 40, 40], get_alignment_baseline="'bottom'", get_pixel_offset=[0, -8], id="names"),
    ]  # fmt: skip


def city_map(url: str) -> None:
    vehicles, cams, weather, incidents = (cached(name, url) for name in
                                          ("vehicle_positions", "cameras", "stations", "open_incidents"))  # fmt: skip
    cams = cams.assign(colour=cams["peak_congestion_level"].map(CONGESTION_COLOURS))
    weather = weather.assign(colour=weather["worst_aqi"].map(lambda aqi: [min(255, aqi * 2), 80, 200]))
    incidents = incidents.assign(radius=incidents["severity"] * 250)
    layers = [
        *corridor_layers(),
        pdk.Layer("ScatterplotLayer", vehicles, get_position=["longitude", "latitude"], get_fill_color=[30, 110, 230],
                  get_radius=120, pickable=True, id="vehicles"),
        pdk.Layer("ScatterplotLayer", cams, get_position=["longitude", "latitude"], get_fill_color="colour",
                  get_radius=500, pickable=True, id="cameras"),
        pdk.Layer("ScatterplotLayer", weather, get_position=["longitude", "latitude"], get_fill_color="colour",
                  get_radius=900, opacity=0.5, pickable=True, id="stations"),
        pdk.Layer("ScatterplotLayer", incidents, get_position=["longitude", "latitude"], get_fill_color=[220, 0, 0],
                  get_line_color=[0, 0, 0], stroked=True, get_radius="radius", pickable=True, id="incidents"),
    ]  # fmt: skip
    tooltip = {"text": "{vehicle_id}{camera_id}{station_id}{incident_id}\n{zone}"}
    st.pydeck_chart(pdk.Deck(layers=layers, initial_view_state=CORRIDOR_VIEW, tooltip=tooltip), height=560)
    legend = st.columns(4)
    legend[0].metric("Vehicles", len(vehicles), help="last known position (blue)")
    legend[1].metric("Cameras", len(cams), help="green free … red severe congestion")
    legend[2].metric("Weather stations", len(weather), help="redder means worse air quality")
    legend[3].metric("Open incidents", len(incidents), help="red, larger when more severe")
    st.dataframe(cams.drop(columns=["colour"]), hide_index=True)


def trends(url: str) -> None:
    span = cached("hour_range", url)
    if span is None:
        raise NoData("no hour has been loaded yet")
    first, last = span
    left, right = st.columns([2, 1])
    window = left.slider("Time range (UTC)", min_value=first, max_value=max(last, first + timedelta(hours=1)),
                         value=(max(first, last - timedelta(hours=24)), last), step=timedelta(hours=1),
                         format="YYYY-MM-DD HH:mm")  # fmt: skip
    selected = right.multiselect("Zones", cached("zones", url), placeholder="all zones")
    traffic = cached("traffic_trend", url, window[0], window[1], selected)
    weather = cached("weather_trend", url, window[0], window[1], selected)
    incidents = cached("incident_trend", url, window[0], window[1], selected)
    st.subheader("Traffic volume and speed")
    columns = st.columns(2)
    columns[0].bar_chart(traffic, x="hour_start", y="vehicles_seen", x_label="hour", y_label="vehicles seen")
    columns[1].bar_chart(traffic, x="hour_start", y="mean_speed_kmh", x_label="hour", y_label="km/h")
    st.subheader("Weather and air quality")
    columns = st.columns(2)
    columns[0].bar_chart(weather, x="hour_start", y="mean_temperature_c", x_label="hour", y_label="°C")
    columns[1].bar_chart(weather, x="hour_start", y="worst_aqi", x_label="hour", y_label="worst AQI")
    st.subheader("Incidents reported per hour")
    st.bar_chart(incidents, x="hour_start", y="reported", color="incident_type", x_label="hour", y_label="reported")


def incidents_page(url: str) -> None:
    span = cached("hour_range", url)
    if span is None:
        raise NoData("no hour has been loaded yet")
    table = cached("incidents", url, span[0], span[1] + timedelta(hours=1))
    filters = st.columns(3)
    kinds = filters[0].multiselect("Type", sorted(table["incident_type"].unique()), placeholder="all types")
    severities = filters[1].multiselect("Severity", [1, 2, 3, 4, 5], placeholder="all severities")
    statuses = filters[2].multiselect("Status", ["reported", "dispatched", "resolved"], placeholder="any status")
    shown = table
    for column, chosen in (("incident_type", kinds), ("severity", severities), ("status", statuses)):
        if chosen:  # no choice means no filter
            shown = shown[shown[column].isin(chosen)]
    resolved = shown["minutes_to_resolve"].dropna()
    summary = st.columns(3)
    summary[0].metric("Incidents", len(shown))
    summary[1].metric("Resolved", len(resolved))
    summary[2].metric("Median time to resolve", f"{resolved.median():.0f} min" if len(resolved) else NO_VALUE)
    st.dataframe(shown, hide_index=True, column_config={
        "minutes_to_resolve": st.column_config.NumberColumn("minutes to resolve", format="%.1f")})  # fmt: skip


def vehicle_page(url: str) -> None:
    ids = cached("vehicles", url)
    if not ids:
        raise NoData("no vehicle trips have been loaded yet")
    vehicle = st.selectbox("Vehicle", ids)
    trip: pd.DataFrame = cached("vehicle_trip", url, vehicle)
    summary = st.columns(3)
    summary[0].metric("Trips", trip["trip_id"].nunique())
    summary[1].metric("Distance", f"{trip['distance_km'].sum():.1f} km")
    summary[2].metric("Top speed", f"{trip['max_speed_kmh'].max():.0f} km/h")
    path = [[row.start_longitude, row.start_latitude] for row in trip.itertuples()]
    path += [[trip["last_longitude"].iloc[-1], trip["last_latitude"].iloc[-1]]]
    layer = pdk.Layer("PathLayer", [{"path": path}], get_path="path", get_color=[30, 110, 230], width_min_pixels=3)
    st.pydeck_chart(pdk.Deck(layers=[*corridor_layers(), layer], initial_view_state=CORRIDOR_VIEW), height=420)
    st.dataframe(trip, hide_index=True)


def show(render: Callable[[str], None], title: str) -> None:
    """Draw a page: its title, then its body, re-run every refresh interval."""
    st.title(title)
    settings = load_settings()  # per run: cheap, and a changed environment is honoured at once

    @st.fragment(run_every=settings.dashboard_refresh_seconds)
    def body() -> None:
        warehouse_problem(render, settings.warehouse)

    body()


# Just under the reload interval: a cache entry as old as the interval would be served by the next reload, and
# what a viewer sees could then be two intervals behind the warehouse.
cached = st.cache_data(ttl=load_settings().dashboard_refresh_seconds - 1, show_spinner=False)(run_query)
