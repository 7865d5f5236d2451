"""A Spark standalone cluster on 127.0.0.1 for tests: a master and two workers of one core each, started from
pyspark's own launcher (``bin/spark-class``, the classes ``start-master.sh`` and ``start-worker.sh`` run), each a
platform service with its log and pid under the given var/.

They are stopped with SIGKILL (their executors with them, as their process group): a throwaway cluster has nothing
to save, and in the full suite the daemons ignored SIGTERM (no "RECEIVED SIGNAL TERM" in their logs), which cost
the 90 s stop timeout of each, 270 s in all."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import pyspark

from smartcity.java import find_java
from smartcity.services import ChosenPort, Service, listens
from smartcity.settings import RuntimePaths

HOST = "127.0.0.1"
WORKERS = 2


class SparkCluster(NamedTuple):
    master_url: str
    """``spark://127.0.0.1:<port>``, what a driver's ``spark.master`` names."""
    web_url: str
    """The master's web UI, whose ``/json/`` lists workers and applications."""
    work_dirs: tuple[Path, ...]
    """Each worker's directory: an executor it ran leaves ``app-…/<executor id>/`` there."""
    services: tuple[Service, ...]

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as answer:
            return json.load(answer)

    def wait_for_workers(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.state()["aliveworkers"] < WORKERS:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{WORKERS} workers did not register with {self.master_url}: {self.state()}")
            time.sleep(1)


def spark_cluster(paths: RuntimePaths, ports: list[int]) -> SparkCluster:
    """The cluster's services (not started) on ``ports``: the master's, its web UI's, then one web UI per worker."""
    launcher = str(Path(pyspark.__file__).parent / "bin" / "spark-class")
    master_port, web_port, *worker_ports = ports
    master_url, ports_file = f"spark://{HOST}:{master_port}", paths.run / "spark-cluster-ports"
    env = {"JAVA_HOME": str(find_java().home), "SPARK_LOCAL_IP": HOST, "SPARK_NO_DAEMONIZE": "1"}
    master = Service(
        name="spark-master", title="Spark master", summary=master_url, paths=paths,
        command=lambda: [launcher, "org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(master_port),
                         "--webui-port", str(web_port)],
        markers=("deploy.master.Master", str(master_port)),
        ports=(ChosenPort(HOST, master_port, ports_file), ChosenPort(HOST, web_port, ports_file)),
        env=env, ready=lambda _pid: listens(HOST, web_port) and listens(HOST, master_port), ready_timeout=90,
        stop_signal=signal.SIGKILL,
    )  # fmt: skip
    work_dirs = tuple(paths.root / f"spark-worker-{index}" for index in range(WORKERS))
    workers = tuple(
        Service(
            name=f"spark-worker-{index}", title=f"Spark worker {index}", summary=f"1 core, {master_url}", paths=paths,
            command=lambda port=port, work=work: [launcher, "org.apache.spark.deploy.worker.Worker", "--host", HOST,
                                                  "--webui-port", str(port), "--cores", "1", "--memory", "1g",
                                                  "--work-dir", str(work), master_url],
            markers=("deploy.worker.Worker", str(port)), ports=(ChosenPort(HOST, port, ports_file),), env=env,
            ready=lambda _pid, port=port: listens(HOST, port), ready_timeout=90, stop_signal=signal.SIGKILL,
        )
        for index, (port, work) in enumerate(zip(worker_ports, work_dirs, strict=True))
    )  # fmt: skip
    return SparkCluster(master_url, f"http://{HOST}:{web_port}", work_dirs, (master, *workers))
