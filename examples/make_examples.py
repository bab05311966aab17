"""Generate the two binary example documents: docs/security-policy.pdf and docs/expense-policy.docx.

The other four examples are plain text files edited by hand. Writing a PDF with text needs fpdf2,
which is not a sovrag dependency; python-docx is. Run it from anywhere:

    python3 -m venv /tmp/genvenv && /tmp/genvenv/bin/pip install fpdf2 python-docx
    /tmp/genvenv/bin/python examples/make_examples.py
"""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).parent / "docs"

SECURITY_TITLE = "Northwind Robotics Information Security Policy"
# (heading, paragraphs); a heading starting with "!" begins a new page.
SECURITY: list[tuple[str, list[str]]] = [
    ("Purpose and scope", [
        "This policy sets the rules that protect Northwind Robotics' information: robot designs, "
        "source code, customer data and the telemetry of the NW-7 fleet. It applies to every employee, "
        "contractor and intern, on every device used for company work, in the office and at home.",
        "The Security Team owns this policy and reviews it every year. Questions go to "
        "security@northwind.example.",
    ]),
    ("Passwords", [
        "Every password for a company account must be at least 14 characters long. We recommend "
        "passphrases of four or more unrelated words, which are long and still easy to remember. "
        "Passwords must not contain your name, the company name or the name of a product.",
        "Use the company password manager to create and store passwords. Never reuse a company password "
        "for another service, never write passwords on paper, and never share them with colleagues, "
        "not even with IT staff: IT will never ask for your password.",
        "Passwords are not changed on a fixed schedule. Forced periodic changes lead to weak, predictable "
        "passwords, so rotation happens only when a compromise is suspected: if you think a password "
        "may have been seen, phished or leaked, change it at once and report it as an incident.",
    ]),
    ("Multi-factor authentication", [
        "Multi-factor authentication (MFA) is required for every company account that supports it, "
        "including email, chat, the source code platform, the VPN and the fleet dashboard. Use the "
        "authenticator app or a hardware security key issued by IT; text-message codes are not allowed.",
        "If you lose your phone or security key, contact it-help@northwind.example so that the lost "
        "factor can be revoked before a new one is enrolled.",
    ]),
    ("Devices", [
        "Company laptops use full-disk encryption and lock the screen after five minutes without use. "
        "Install security updates within seven days of their release. Personal devices may be used only "
        "for email and chat through the company apps, never for source code or customer data.",
    ]),
    ("!Incident reporting", [
        "A security incident is any event that may put company or customer information at risk: a lost "
        "or stolen laptop or phone, a phishing email you clicked, a password you typed into a suspicious "
        "page, malware warnings, or data sent to the wrong recipient.",
        "Report every suspected incident within 1 hour of noticing it, by email to "
        "security@northwind.example. Outside office hours, also call the security hotline listed on the "
        "intranet. Reporting quickly matters more than being sure: a report that turns out to be a false "
        "alarm is never a problem.",
        "Your report should say what happened, when it happened, which devices, accounts or data are "
        "involved, and what you have done so far. Do not try to investigate on your own and do not delete "
        "suspicious emails; the Security Team may need them.",
    ]),
    ("After an incident", [
        "The Security Team confirms each report, leads the response and decides whether customers or "
        "authorities must be informed. Under the GDPR a personal data breach may have to be reported to "
        "the supervisory authority within 72 hours, which is why our own reporting deadline is so short.",
    ]),
    ("Compliance", [
        "Violations of this policy may lead to disciplinary action. Exceptions need written approval from "
        "the Security Team and are reviewed every six months.",
    ]),
]

EXPENSE_TITLE = "Northwind Robotics Travel and Expense Policy"
EXPENSE: list[tuple[int, str, list[str]]] = [
    (1, "Purpose", [
        "This policy explains which business expenses Northwind Robotics reimburses and how to claim "
        "them. It covers travel to customers, trade fairs and other offices, as well as smaller purchases "
        "made for your work. The Finance Team owns this policy.",
    ]),
    (1, "Travel", []),
    (2, "Transport", [
        "Take the train for trips under four hours; book second class, or first class when the trip "
        "lasts more than four hours. Flights are allowed for longer trips and are booked in economy "
        "class through the company travel portal.",
    ]),
    (2, "Hotels", [
        "The hotel limit is 180 EUR per night, including breakfast and city taxes. In a few expensive "
        "cities where no suitable hotel is available within this limit, the Finance Team may approve a "
        "higher rate before you book.",
    ]),
    (2, "Meals", [
        "Meals during business travel are reimbursed up to 60 EUR per day in total. Alcohol is not "
        "reimbursed. When a customer pays for a meal, or a meal is included in a conference ticket, it "
        "does not count towards the daily limit.",
    ]),
    (1, "Claiming expenses", [
        "Submit every expense in the expense tool with a photo or PDF of the receipt. Receipts must be "
        "submitted within 30 days of the expense; claims submitted later are not reimbursed. "
        "Reimbursements are paid with the next monthly salary.",
    ]),
    (2, "Lost receipts", [
        "If a receipt is lost, fill in the missing-receipt form in the expense tool and explain what was "
        "bought, when and why. Missing-receipt claims are accepted at most twice per year per employee.",
    ]),
    (1, "Company credit cards", [
        "Employees who travel often can request a company credit card from the Finance Team. Card "
        "payments still need a receipt in the expense tool, and the same limits apply as for expenses "
        "you pay yourself. Never use the company card for private purchases, not even if you intend to "
        "pay the amount back.",
    ]),
    (1, "Approvals", [
        "Expenses up to 500 EUR need no prior approval when they follow this policy. Any single expense "
        "over 500 EUR must be approved by your manager before you spend the money; attach the approval "
        "to your claim.",
        "Managers check that the expense is needed for the work, that it follows this policy and that "
        "the budget of the team allows it. The Finance Team checks every claim before payment and may "
        "ask for more information; claims that break the policy are returned with an explanation.",
    ]),
    (1, "Limits at a glance", []),
]
EXPENSE_TABLE = [
    ("Expense", "Limit"),
    ("Meals", "60 EUR per day"),
    ("Hotel", "180 EUR per night"),
    ("Receipts", "within 30 days"),
    ("Manager approval", "over 500 EUR"),
]


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(SECURITY_TITLE)
    pdf.set_author("Northwind Robotics Security Team")
    pdf.set_margins(22, 22)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.multi_cell(0, 9, SECURITY_TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    version = "Version 3.1, effective 1 March 2024. Owner: Security Team."
    pdf.multi_cell(0, 6, version, new_x="LMARGIN", new_y="NEXT")
    for heading, paragraphs in SECURITY:
        if heading.startswith("!"):
            heading = heading[1:]
            pdf.add_page()
        pdf.ln(4)
        pdf.set_font("helvetica", "B", 13)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", "", 11)
        for text in paragraphs:
            pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))


def make_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = EXPENSE_TITLE
    d.core_properties.author = "Northwind Robotics Finance Team"
    d.add_heading(EXPENSE_TITLE, level=0)
    d.add_paragraph("Valid from 1 January 2024. Applies to all employees of Northwind Robotics.")
    for level, heading, paragraphs in EXPENSE:
        d.add_heading(heading, level=level)
        for text in paragraphs:
            d.add_paragraph(text)
    table = d.add_table(rows=len(EXPENSE_TABLE), cols=2)
    table.style = "Table Grid"
    for row, (a, b) in zip(table.rows, EXPENSE_TABLE, strict=True):
        row.cells[0].text, row.cells[1].text = a, b
    d.save(str(path))


if __name__ == "__main__":
    DOCS.mkdir(parents=True, exist_ok=True)
    make_pdf(DOCS / "security-policy.pdf")
    make_docx(DOCS / "expense-policy.docx")
