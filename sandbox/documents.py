"""Realistic sample documents for the demo and the load runs, deterministic for a given seed.

Invoices are small PDFs with "Key: Value" lines (what the simulator's extractor finds), documents are
text files of a few kinds (what its classifier tells apart), packets are multi-page PDFs (what its
splitter cuts), pages are multi-page reports with headings (what its parser chunks), claims are claim
forms (what its workflow extracts; one in ``REVIEW_EVERY`` carries the ``SIMULATE_REVIEW`` marker, so
its run waits in NEEDS_REVIEW for a person). A few files are meant to be REJECTED: an empty one, an
unsupported type, and a key outside every route.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

VENDORS = ["ACME Corp", "Globex", "Initech", "Umbrella Ltd", "Stark Industries", "Wayne Enterprises"]
DOC_KINDS = {
    "invoice": "INVOICE\nInvoice Number: {n}\nAmount due: {amount}",
    "receipt": "RECEIPT\nThank you for your purchase.\nReceipt No: {n}\nPaid: {amount}",
    "contract": "SERVICE CONTRACT\nThis contract is made between {vendor} and the customer.\nTerm: 12 months",
    "bank statement": "BANK STATEMENT\nAccount: {n}\nClosing balance: {amount}",
    "letter": "Dear customer,\nWe write to let you know about {vendor}.\nKind regards",
}


@dataclass(frozen=True)
class SampleFile:
    key: str
    body: bytes
    expect_rejected: str | None = None  # the REJECTED reason this file must get


def _pdf(pages: list[str]) -> bytes:
    """A small PDF-shaped file: one page object per page, the text in plain lines."""
    parts = ["%PDF-1.4"]
    for number, text in enumerate(pages, start=1):
        parts.append(f"{number} 0 obj << /Type /Page >> endobj\n{text}")
    parts.append("%%EOF")
    return "\n".join(parts).encode("utf-8")


def invoice(rng: random.Random, i: int) -> SampleFile:
    vendor = rng.choice(VENDORS)
    body = _pdf(
        [
            f"INVOICE\nInvoice Number: INV-{i:06d}\nVendor: {vendor}\n"
            f"Date: 2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}\n"
            f"Total: {rng.randint(10, 50_000)}.{rng.randint(0, 99):02d}\nCurrency: USD"
        ]
    )
    return SampleFile(f"invoices/2026/{vendor.split()[0].lower()}/INV-{i:06d}.pdf", body)


def document(rng: random.Random, i: int) -> SampleFile:
    kind = rng.choice(list(DOC_KINDS))
    text = DOC_KINDS[kind].format(
        n=f"{i:06d}", amount=f"{rng.randint(1, 9999)}.00", vendor=rng.choice(VENDORS)
    )
    return SampleFile(f"documents/inbox/doc-{i:06d}.txt", text.encode("utf-8"))


def packet(rng: random.Random, i: int) -> SampleFile:
    pages = [
        f"{rng.choice(['INVOICE', 'RECEIPT', 'STATEMENT'])}\nReference: P{i:05d}-{page}"
        for page in range(1, rng.randint(2, 6) + 1)
    ]
    return SampleFile(f"packets/batch-{i // 100:03d}/packet {i:05d}.pdf", _pdf(pages))


REPORT_SECTIONS = ["Summary", "Findings", "Methodology", "Risks", "Next steps", "Appendix"]
CLAIM_KINDS = ["Water damage", "Theft", "Vehicle collision", "Fire", "Storm damage", "Medical expense"]
# One claim in this many asks for a person's review at Extend (the simulator's SIMULATE_REVIEW marker).
REVIEW_EVERY = 20


def report(rng: random.Random, i: int) -> SampleFile:
    """A report of 2 to 5 pages, each opening with a heading, for a parse route."""
    vendor = rng.choice(VENDORS)
    pages = [
        f"QUARTERLY REPORT {section.upper()}\nPrepared by: {vendor}\nReport No: RPT-{i:06d}\n"
        f"Revenue grew {rng.randint(1, 30)} percent over the quarter, with {rng.randint(2, 40)} new accounts."
        for section in rng.sample(REPORT_SECTIONS, rng.randint(2, 5))
    ]
    return SampleFile(f"pages/reports/{vendor.split()[0].lower()}/RPT-{i:06d}.pdf", _pdf(pages))


def claim(rng: random.Random, i: int, review: bool = False) -> SampleFile:
    """An insurance claim form for a workflow route; with ``review``, one its run waits on a person for."""
    lines = [
        "CLAIM FORM",
        f"Claim Number: CLM-{i:06d}",
        f"Policy Number: POL-{rng.randint(100_000, 999_999)}",
        f"Claimant: {rng.choice(VENDORS)}",
        f"Loss type: {rng.choice(CLAIM_KINDS)}",
        f"Date of loss: 2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}",
        f"Amount claimed: {rng.randint(200, 80_000)}.{rng.randint(0, 99):02d}",
    ]
    if review:
        lines.append("Adjuster note: amount above the automatic approval limit SIMULATE_REVIEW")
    return SampleFile(f"claims/2026/CLM-{i:06d}.pdf", _pdf(["\n".join(lines)]))


MAKERS = {"invoices": invoice, "documents": document, "packets": packet, "pages": report, "claims": claim}
# Files per route in each run of that many files (the share of each route), in upload order.
CLASSIC_MIX = {"invoices": 5, "documents": 3, "packets": 2}
DEMO_MIX = {"invoices": 9, "documents": 4, "packets": 3, "pages": 2, "claims": 2}


def sample_files(
    total: int, seed: int = 7, with_rejects: bool = True, mix: dict[str, int] | None = None
) -> list[SampleFile]:
    """``total`` files over the routes of ``mix`` (default ``CLASSIC_MIX``, the three processor routes:
    50 % invoices, 30 % documents, 20 % packets; the demo's ``DEMO_MIX`` adds pages and claims), three of
    them files that must be rejected."""
    rng = random.Random(seed)
    rejects = (
        [
            SampleFile("invoices/2026/empty-upload.pdf", b"", expect_rejected="EMPTY_FILE"),
            SampleFile(
                "documents/inbox/setup.exe", b"MZ\x90\x00not a document", expect_rejected="UNSUPPORTED_TYPE"
            ),
            SampleFile("scans/unsorted/stray scan.pdf", _pdf(["stray"]), expect_rejected="NO_ROUTE"),
        ]
        if with_rejects and total >= 3
        else []
    )
    regular = total - len(rejects)
    order = [route for route, share in (mix or CLASSIC_MIX).items() for _ in range(share)]
    files, claims = [], 0
    for i in range(regular):
        route = order[i % len(order)]
        if route == "claims":
            files.append(claim(rng, i, review=claims % REVIEW_EVERY == 1))
            claims += 1
        else:
            files.append(MAKERS[route](rng, i))
    return files + rejects
