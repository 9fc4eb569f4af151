"""Fixed-window rate limits per client IP: counters in memory (one process) or in Redis (shared by
every process of the service)."""

from __future__ import annotations

import threading
import time

from ..config import RateLimit


class RateLimiter:
    def __init__(self, storage_url: str = "memory://", prefix: str = "coc-orders"):
        self.prefix = prefix
        self._redis = None
        if storage_url and storage_url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            self._redis = redis.Redis.from_url(
                storage_url, socket_timeout=1, socket_connect_timeout=1
            )
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def hit(self, name: str, client: str, limit: RateLimit) -> tuple[bool, int]:
        """Count one request of ``client``; returns (allowed, seconds until the window ends)."""
        allowed, window = limit.count, limit.seconds
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
            except Exception:
                return True, retry_after
        else:
            with self._lock:
                count = self._counts.get(key, (0, 0))[0] + 1
                self._counts[key] = (count, start + window)
                if len(self._counts) > 10000:
                    self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        return count <= allowed, retry_after
