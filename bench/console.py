"""Where output goes during a run: progress lines on the console, and the handlers' own output (logs, EMF
metrics) into a sink that counts its bytes."""

from __future__ import annotations

import os
import sys
import threading
import time

_started = time.monotonic()


def progress(message: str) -> None:
    """Console progress (stderr: stdout is where the handlers' logs go, and they are swallowed)."""
    print(f"[bench {time.monotonic() - _started:7.1f}s] {message}", file=sys.__stderr__, flush=True)


class LogSink:
    """Swallows what the handlers print (Powertools JSON logs and EMF metrics), counting bytes by phase
    (CloudWatch Logs ingestion is priced by the byte) and keeping the first few errors for the console."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.lines = 0
        self.errors: list[str] = []
        self.error_count = 0

    def write(self, text: str) -> int:
        with self._lock:
            self.bytes += len(text.encode("utf-8", "replace"))
            self.lines += text.count("\n")
            if '"level":"ERROR"' in text or '"level": "ERROR"' in text:
                self.error_count += 1
                if len(self.errors) < 5:
                    self.errors.append(text.strip()[:600])
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def mark(self) -> tuple[int, int]:
        with self._lock:
            return self.bytes, self.error_count


SINK = LogSink()


def capture_handler_output() -> None:
    """Send stdout (EMF metrics, Powertools logs) to the sink for the rest of the process."""
    from batchdrop_core.observability import logger

    sys.stdout = SINK  # type: ignore[assignment]
    for handler in logger.handlers:  # Powertools' StreamHandler captured sys.stdout at import
        if hasattr(handler, "setStream"):
            handler.setStream(SINK)
    os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
