"""Fixed-window rate limits per client IP: counters in memory (one process) or in Redis (shared by
every process of the service)."""
from __future__ import annotations

import re
import threading
import time

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_limit(text: str) -> tuple[int, int]:
    """``"10/minute"`` -> (10, 60)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*", text or "")
    if not match:
        raise ValueError(f"not a rate limit: {text!r} (expected N/second|minute|hour|day)")
    return int(match.group(1)), _UNITS[match.group(2)]


class RateLimiter:
    def __init__(self, storage_url: str = "memory://", prefix: str = "coc-orders"):
        self.prefix = prefix
        self._redis = None
        if storage_url and storage_url.startswith(("redis://", "rediss://", "unix://")):
            import redis
            self._redis = redis.Redis.from_url(storage_url, socket_timeout=1, socket_connect_timeout=1)
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def hit(self, name: str, client: str, limit: str) -> tuple[bool, int]:
        """Count one request of ``client``; returns (allowed, seconds until the window ends)."""
        allowed, window = parse_limit(limit)
        now = time.time()
        start = int(now // window) * window
        retry_after = max(1, int(start + window - now))
        key = f"{self.prefix}:{name}:{client}:{start}"
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline()
                pipe.incr(key)
                pipe.expire(key, window + 1)
                count = pipe.execute()[0]
            except Exception:  # noqa: BLE001 - a limiter outage must not take the API down
                return True, retry_after
        else:
            with self._lock:
                count = self._counts.get(key, (0, 0))[0] + 1
                self._counts[key] = (count, start + window)
                if len(self._counts) > 10000:
                    self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        return count <= allowed, retry_after
