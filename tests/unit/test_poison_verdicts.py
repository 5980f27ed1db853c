"""Whose fault is a refused batch POST: the route's (blocked) or some inputs' (rejected alone)?"""

from __future__ import annotations

import pytest

from batchdrop_core.extend import ExtendInputError, ExtendRejectedError
from batchdrop_core.submit import FlushOutcome, isolate_poison


@pytest.mark.parametrize(
    "error",
    [
        ExtendRejectedError("Invalid API key", status_code=401, code="UNAUTHORIZED"),
        ExtendRejectedError("Insufficient credits", status_code=402),
        ExtendRejectedError("Forbidden", status_code=403),
        ExtendRejectedError("Extractor ex_1 not found", status_code=404, code="NOT_FOUND"),
        ExtendRejectedError("Invalid override; Path: extractor.overrideConfig.fields", status_code=400),
        ExtendRejectedError("priority must be an integer; Path: priority", status_code=422),
        ExtendInputError("extract processor ids start with 'ex_'"),
    ],
)
def test_refusals_of_the_route_itself_block_it_and_touch_no_file(error: Exception) -> None:
    # rt is never used on this path: no file is rejected, released or read
    verdict, files = isolate_poison(None, "sub_1", [], error, FlushOutcome(), 1)  # type: ignore[arg-type]
    assert verdict == "route" and files == []
