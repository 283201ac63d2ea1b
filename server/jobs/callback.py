"""Delivering job progress and results to a callback URL: ``POST`` JSON ``{"event", "job"}``.

Progress events (one per stage change) are sent once, with a short timeout; the terminal event (``done``,
``failed``, ``cancelled``) is retried with exponential back-off on connection errors, timeouts, 429 and 5xx
(urllib3's :class:`~urllib3.util.Retry`, ``backoff_factor`` seconds × 2ⁿ). Every delivery's outcome is recorded
on the job (attempts, delivered time, last error), so a failing callback is visible and the result is never lost:
it stays in the job whatever the callback does. Deliveries run on one background thread per sender, in order,
so a hanging endpoint never holds up a job worker.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from ..store.jobs import JobStore

log = logging.getLogger(__name__)


class CallbackSender:
    """Posts job events to their callback URLs (see the module docstring).

    Args:
        store: where delivery outcomes are recorded.
        timeout_s: connect and read timeout of one attempt, seconds.
        retries: extra attempts of a terminal event.
        backoff_s: urllib3 back-off factor: waits ``backoff_s · 2^(n-1)`` between attempts.
    """

    def __init__(self, store: JobStore, *, timeout_s: float = 10.0, retries: int = 4, backoff_s: float = 0.5) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self._once = self._session(Retry(total=0, raise_on_status=False))
        self._retrying = self._session(Retry(
            total=retries, backoff_factor=backoff_s, status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"POST"}), raise_on_status=False, respect_retry_after_header=True))
        self._retries = retries
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-callback")

    @staticmethod
    def _session(retry: Retry) -> requests.Session:
        s = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.trust_env = False  # no proxies from the environment: the URL is the job's, as given
        return s

    def send(self, job_id: str, url: str, event: str, job: dict, *, final: bool) -> Future:
        """Queue one delivery; the future resolves to True when the endpoint answered 2xx."""
        return self._pool.submit(self._deliver, job_id, url, event, job, final)

    def _deliver(self, job_id: str, url: str, event: str, job: dict, final: bool) -> bool:
        session = self._retrying if final else self._once
        error, ok, attempts = None, False, 1
        try:
            response = session.post(url, json={"event": event, "job": job}, timeout=self.timeout_s,
                                    allow_redirects=False)
            retried = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
            attempts += len(retried)
            ok = 200 <= response.status_code < 300
            if not ok:
                error = f"{event}: HTTP {response.status_code} from the callback URL"
        except requests.RequestException as exc:
            attempts += self._retries if final else 0
            error = f"{event}: {type(exc).__name__}: {exc}"
        if error:
            log.warning("job callback failed", extra={"job": job_id, "error": error})
        try:
            self.store.callback_report(job_id, attempts=attempts, delivered=ok, error=error)
        except Exception as exc:  # noqa: BLE001 -- a deleted job or a busy database: the outcome is only logged
            log.warning("cannot record a callback outcome", extra={"job": job_id, "error": str(exc)})
        return ok

    def close(self) -> None:
        """Wait for queued deliveries (bounded by their timeouts and retries), then stop."""
        self._pool.shutdown(wait=True)
        self._once.close()
        self._retrying.close()
