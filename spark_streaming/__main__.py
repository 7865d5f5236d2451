"""Entry point of the ingestion stream: ``python -m spark_streaming`` or ``spark-submit spark_streaming/__main__.py``.

Settings come from the ``SMARTCITY_*`` environment like every other component.
"""

from __future__ import annotations

import argparse
import logging
import sys

from smartcity.errors import PlatformError
from smartcity.settings import load_settings
from spark_streaming.control import run_foreground


def main() -> None:
    parser = argparse.ArgumentParser(prog="spark_streaming", description=__doc__)
    parser.add_argument("--mode", choices=("continuous", "available-now"), default="continuous",
                        help="continuous: a micro-batch every SMARTCITY_STREAM_TRIGGER_SECONDS; "
                        "available-now: drain what is in Kafka, commit, stop")  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        run_foreground(load_settings(), available_now=args.mode == "available-now")
    except PlatformError as exc:
        logging.getLogger("spark_streaming").error("%s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
