"""The services' staff HTTP APIs, as the console calls them: each call carries a short staff
token the console signs for the staff member at the keyboard, for that one service (``aud``), so
every service records the real person in its own support actions log."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests

from coc_shared.tokens import TokenError, issue_staff_token

TOKEN_MINUTES = 10
PARALLEL_CALLS = 12  # a page's calls to the services at once (call_many)


class ServiceUnavailable(Exception):
    """A service did not answer, or answered with an error the console cannot act on."""


class ServiceError(Exception):
    """A service refused the call (4xx): ``status`` and its message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class StaffApiClient:
    def __init__(self, service_urls: dict, private_key: str | None, timeout: float = 5.0):
        self.service_urls = service_urls
        self.private_key = private_key
        self.timeout = timeout
        # requests.Session is not thread-safe: one per thread (call_many's pool, the server's)
        self._sessions = threading.local()
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # made at the first call_many (per process)

    @property
    def http(self) -> requests.Session:
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def call_many(self, calls: list[dict]) -> list:
        """Several ``call``s (each a dict of its arguments) at once, so that a page waits for the
        slowest service, not for their sum; each answer, or the exception its call raised."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(PARALLEL_CALLS, thread_name_prefix="staff-api")
        futures = [self._pool.submit(self.call, **c) for c in calls]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except (ServiceUnavailable, ServiceError) as exc:
                results.append(exc)
        return results

    def _token(self, service: str, staff_name: str, role: str) -> str:
        key = (service, staff_name, role)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic() + 60:
                return cached[0]
            try:
                issued = issue_staff_token(
                    self.private_key,
                    staff_name,
                    role,
                    ttl=timedelta(minutes=TOKEN_MINUTES),
                    audience=(service,),
                )
            except TokenError as exc:
                raise ServiceUnavailable(f"the console cannot sign staff tokens: {exc}") from None
            self._tokens[key] = (issued.token, time.monotonic() + TOKEN_MINUTES * 60)
            return issued.token

    def call(
        self,
        service: str,
        method: str,
        path: str,
        staff_name: str,
        role: str,
        params: dict | None = None,
        json: dict | None = None,
        missing_ok: bool = False,
    ):
        """The JSON answer; None for a 404 when ``missing_ok``; ServiceError for another 4xx;
        ServiceUnavailable when the service cannot be reached or fails."""
        url = self.service_urls[service] + path
        headers = {"Authorization": f"Bearer {self._token(service, staff_name, role)}"}
        try:
            response = self.http.request(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"{service} does not answer ({type(exc).__name__})") from None
        if response.status_code == 404 and missing_ok:
            return None
        if 400 <= response.status_code < 500:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.reason
            raise ServiceError(response.status_code, f"{service}: {message}")
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{service} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise ServiceUnavailable(f"{service} answered something other than JSON") from None
