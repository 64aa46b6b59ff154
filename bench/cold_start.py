"""Cold start: a fresh process importing function_app and indexing its functions, against one importing only
azure.functions, msal, requests and pydantic. Target: at most 1.3x in wall time and in peak memory."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 9
TARGET = 1.3
APP = "import function_app; function_app.app.get_functions()"
BASELINE = "import azure.functions, msal, requests, pydantic"


def _measure(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a fresh interpreter running `code`, with no settings in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("W365_", "DATAVERSE_", "AUTHORIZENET_"))}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{code!r} failed with status {status}")
    return wall, usage.ru_maxrss / 1024


def _median_of(code: str) -> tuple[float, float]:
    _measure(code)                                  # warm the .pyc files, as a deployed app has them
    samples = [_measure(code) for _ in range(RUNS)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> bool:
    app_wall, app_rss = _median_of(APP)
    base_wall, base_rss = _median_of(BASELINE)
    wall_ratio, rss_ratio = app_wall / base_wall, app_rss / base_rss
    print(f"{'process':<44}{'wall (median of %d)' % RUNS:>22}{'peak RSS':>12}")
    print(f"{'import azure.functions, msal, requests, pydantic':<44}{base_wall * 1000:>19.0f} ms{base_rss:>8.1f} MiB")
    print(f"{'import function_app + get_functions()':<44}{app_wall * 1000:>19.0f} ms{app_rss:>8.1f} MiB")
    print(f"{'ratio (target <= %.1fx)' % TARGET:<44}{wall_ratio:>21.2f}x{rss_ratio:>11.2f}x")
    return wall_ratio <= TARGET and rss_ratio <= TARGET


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
