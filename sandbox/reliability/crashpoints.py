"""Where a fault run breaks the pipeline: crash points installed through the seams the local pipeline
offers (each function's event-source handler, its runtime's stores and boto3 clients), never by patching a
class or a module for the whole process.

A crash point that names a method checks that the method exists on the object's class, so a rename fails
the run at once instead of silently turning the fault off (the short run also asserts that every kind
fired).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from batchdrop_core import submit as submit_module

if TYPE_CHECKING:
    from sandbox.reliability.faults import FaultInjector


class SimulatedCrash(RuntimeError):
    """Raised where the run crashes a function: the invocation fails as if the process had died there."""


class Seams:
    """Replacements on single objects (one runtime's store, one event source) that can all be undone."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def wrap(
        self, target: Any, name: str, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]
    ) -> None:
        """Replace ``target.name`` (its class's method, or a handler attribute) by ``wrapper(original)``."""
        original = getattr(target, name, None)
        if not callable(original):
            raise AttributeError(
                f"{type(target).__name__} has no callable {name!r}: a fault seam is out of date"
            )
        had_own = name in vars(target)
        setattr(target, name, wrapper(original))

        def undo() -> None:
            if had_own:
                setattr(target, name, original)
            else:
                delattr(target, name)  # the class's method shows through again

        self._undo.append(undo)

    def on_call(self, client: Any, event: str, handler: Callable[..., Any]) -> None:
        """A botocore event handler on one boto3 client (``before-parameter-build.s3.PutObject`` …)."""
        client.meta.events.register(event, handler)
        self._undo.append(lambda: client.meta.events.unregister(event, handler))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


def install_crash_points(injector: FaultInjector, seams: Seams) -> None:
    pipeline = injector.sandbox.pipeline
    take = injector.take

    def crash_after_handler(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrapper(handler: Callable[..., Any]) -> Callable[..., Any]:
            def invoke(event: dict[str, Any], context: Any) -> Any:
                response = handler(event, context)
                if take(kind):
                    raise SimulatedCrash("crashed after the handler's writes, before SQS acknowledged")
                return response

            return invoke

        return wrapper

    for source, kind in (
        (pipeline.intake, "crash_intake_after_write_before_ack"),
        (pipeline.submitter, "crash_submitter_after_write_before_ack"),
        (pipeline.results, "crash_results_after_write_before_ack"),
    ):
        seams.wrap(source, "handler", crash_after_handler(kind))

    submitter, results, webhook = (pipeline.runtime(name) for name in ("submitter", "results", "webhook"))

    def link_batch_id(original: Callable[..., bool]) -> Callable[..., bool]:
        def link(submission_id: str, batch_id: str) -> bool:
            if take("crash_after_post_before_record"):
                raise SimulatedCrash("crashed after the POST, before recording the batch id")
            return original(submission_id, batch_id)

        return link

    # The submitter's store only: the results worker links batches too (an adopted one).
    seams.wrap(submitter.batches, "link_batch_id", link_batch_id)

    results_bucket = results.resources.results_bucket

    def put_result(params: dict[str, Any], **_: Any) -> None:
        if params.get("Bucket") == results_bucket and take("crash_mid_results_collection"):
            raise SimulatedCrash("crashed in the middle of storing a batch's results")

    seams.on_call(results.client("s3"), "before-parameter-build.s3.PutObject", put_result)

    def record_outcome(original: Callable[..., bool]) -> Callable[..., bool]:
        def record(*args: Any, **kwargs: Any) -> bool:
            if kwargs.get("result_key") and take("crash_after_result_object_before_record"):
                raise SimulatedCrash("crashed after writing the result object, before recording it")
            return original(*args, **kwargs)

        return record

    seams.wrap(results.files, "record_outcome", record_outcome)

    def claim_event(original: Callable[..., Any]) -> Callable[..., Any]:
        def claim(*args: Any, **kwargs: Any) -> Any:
            claimed = original(*args, **kwargs)
            if claimed and take("crash_webhook_after_dedupe_write"):
                raise SimulatedCrash("crashed after recording the webhook event, before enqueueing it")
            return claimed

        return claim

    seams.wrap(webhook.state, "claim_event", claim_event)
    _install_expired_urls(injector, seams, submitter)


def _install_expired_urls(injector: FaultInjector, seams: Seams, submitter: Any) -> None:
    """URLs that live one second, and an Extend queue slower than that.

    The one fault that wraps a function of the core rather than a runtime's object: the URLs' lifetime and
    the expiry the submission records (how collection tells an expired URL from a bad file) both come from
    the runtime's settings within one call to ``build_inputs``, and the submitter's runtime is shared by
    its concurrent routes, so a per-call copy of the runtime is the only way to shorten one batch's URLs.
    """
    expired_submissions: set[str] = set()
    lock = threading.Lock()

    def doomed() -> bool:
        # A batch Extend is about to fail as a whole, or refuse (the key revoked), never fetches its URLs.
        return injector.sim.faults.fail_batches > 0 or injector.key_revoked

    def build_inputs(original: Callable[..., Any]) -> Callable[..., Any]:
        def build(rt: Any, route: Any, submission_id: str, files: Any) -> Any:
            if rt.settings.file_transfer != "url" or doomed() or not injector.take("expired_presigned_url"):
                return original(rt, route, submission_id, files)
            short = copy.copy(rt)
            short.settings = replace(rt.settings, presigned_url_expiry_seconds=1)
            built = original(short, route, submission_id, files)
            time.sleep(2.5)
            if doomed():
                # The schedule doomed this batch while its URLs expired: it goes with live URLs, and the
                # fault waits for the next batch.
                injector.grant("expired_presigned_url")
                return original(rt, route, submission_id, files)
            with lock:
                expired_submissions.add(submission_id)
            return built

        return build

    seams.wrap(submit_module, "build_inputs", build_inputs)

    # A batch of expired URLs whose POST never reached Extend (a 5xx, a revoked key) bit nothing: its files
    # went back to the queue, to go round with fresh URLs. The fault is given again, so every run shows it.
    def release(original: Callable[..., int]) -> Callable[..., int]:
        def give_back(files: Any, submission_id: str) -> int:
            with lock:
                missed = submission_id in expired_submissions
                expired_submissions.discard(submission_id)
            if missed and not injector.stopped:
                injector.grant("expired_presigned_url")
            return original(files, submission_id)

        return give_back

    seams.wrap(submitter.files, "release", release)
