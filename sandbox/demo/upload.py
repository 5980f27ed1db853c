"""The demo's uploader: the sample files into the drop bucket from a few threads, stoppable."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sandbox.local import Sandbox


class Uploader:
    """Puts the sample files into the drop bucket from 8 threads; ``stop`` lets only the puts in hand end."""

    def __init__(self, sandbox: Sandbox, files: list[Any]) -> None:
        self.files = files
        self.count = 0
        self.error: BaseException | None = None
        self._s3 = sandbox.deployment.session.client("s3")
        self._bucket = sandbox.deployment.resources.drop_bucket
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-upload", daemon=True)

    def start(self) -> Uploader:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _put(self, sample: Any) -> None:
        if self._stop.is_set():
            return
        self._s3.put_object(Bucket=self._bucket, Key=sample.key, Body=sample.body)
        with self._lock:
            self.count += 1

    def _run(self) -> None:
        try:
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="demo-upload") as pool:
                list(pool.map(self._put, self.files))
        except Exception as exc:  # noqa: BLE001 - reported by the demo, which then stops
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
