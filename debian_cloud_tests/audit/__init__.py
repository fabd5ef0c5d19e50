"""What Debian's audit references (SCAP Security Guide, lynis) check, and which of our checks
cover each of their rules: docs/audit-coverage.md is generated from here."""
