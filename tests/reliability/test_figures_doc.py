"""``make reliability`` writes its figures into docs/reliability.md, between two markers, and nowhere else."""

from __future__ import annotations

from pathlib import Path

from sandbox.reliability import DOC, FIGURES_END, FIGURES_START, render_figures, write_figures

REPORT = {
    "startedAt": "2026-11-28T22:33:00+00:00",
    "durationSeconds": 1290.0,
    "machine": {"cpus (nproc)": "2", "cpu model": "AMD EPYC", "memory": "24 GiB", "python": "3.11.7"},
    "options": {"files": 5000, "batch_size": 200, "fault_seconds": 600.0, "seed": 7},
    "finished": True,
    "settled": True,
    "files": {
        "objectVersionsUploaded": 5015,
        "tracked": 5016,
        "byStatus": {"PROCESSED": 4940, "FAILED": 69, "REJECTED": 7},
        "byReason": {"PARSING_ERROR": 50},
        "requeues": {"INTERNAL_ERROR": 400},
        "runsAtExtend": 5800,
        "resultObjects": 4940,
    },
    "batches": {"submissions": 60, "byState": {"COMPLETED": 60}, "atExtend": 60, "full": 22, "partial": 38,
                "adopted": 17},
    "notifications": {"batch.completed": 60},
    "dlq": {"arrivals": 2, "flush": 0, "results": 0},
    "faults": {"lost_post_response": 10, "api_key_revoked": 9},
    "violationCount": 0,
    "violations": {"I1": {"count": 0, "examples": []}, "I4": {"count": 0, "examples": []}},
}  # fmt: skip


def test_the_figures_replace_only_their_section(tmp_path: Path) -> None:
    # Given a page with an old figures section between prose
    doc = tmp_path / "reliability.md"
    doc.write_text(
        f"# Title\n\nbefore\n\n{FIGURES_START}\nold figures\n{FIGURES_END}\n\nafter\n", encoding="utf-8"
    )

    # When a run's report is written into it
    write_figures(REPORT, doc)

    # Then the old figures are gone, the new ones are there, the prose around them is untouched
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old figures" not in text
    assert "**Invariant violations: 0** (I1 0, I4 0)" in text
    assert "| `lost_post_response` | 10 |" in text
    assert "5,000 regular files and 15 adversarial object versions" in text


def test_violations_are_listed_and_the_real_page_has_the_markers() -> None:
    failing = {**REPORT, "violationCount": 1, "violations": {"I5": {"count": 1, "examples": ["a 500"]}}}
    assert "- VIOLATION I5: a 500" in render_figures(failing)
    text = DOC.read_text(encoding="utf-8")
    assert text.count(FIGURES_START) == 1 and text.count(FIGURES_END) == 1
