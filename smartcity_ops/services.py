"""The table of the platform's background services, by name and in start order.

Each service is defined next to its own code; this table is the one place that lists them all, for starting,
stopping, the banner and `smartcity status`.
"""

from __future__ import annotations

from collections.abc import Callable

from dashboard.serve import dashboard_service
from simulator.service import simulator_service
from smartcity.kafka.broker import broker_service
from smartcity.services import Service
from smartcity.settings import Settings
from smartcity_dagster.services import daemon_service, webserver_service
from smartcity_dagster.spark_connect import spark_connect_service
from spark_streaming.control import stream_service

SERVICES: dict[str, Callable[[Settings], Service]] = {
    "kafka": broker_service,
    "simulator": simulator_service,
    "stream": stream_service,
    "spark": spark_connect_service,
    "daemon": daemon_service,
    "dagster": webserver_service,
    "dashboard": dashboard_service,
}
"""Every background service by name, in start order (the broker first: the simulator and the stream need it)."""


def services(settings: Settings, names: list[str] | tuple[str, ...] = tuple(SERVICES)) -> list[Service]:
    """The named services (all by default) and the broker, in start order. With bootstrap servers of another
    cluster (``SMARTCITY_KAFKA_BOOTSTRAP_SERVERS``) the platform's own broker is not one of them."""
    wanted = {*names, "kafka"} if settings.uses_local_broker else set(names) - {"kafka"}
    return [make(settings) for name, make in SERVICES.items() if name in wanted]
