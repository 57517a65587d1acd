"""Compliance: the append-only, hash-chained trail of every message a customer received."""
