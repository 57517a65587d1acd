"""Conversation review (会话存档): archived chat messages pulled through a source, decrypted with
the corp's versioned keys, reviewed against ``sop/compliance/review.yaml`` and stored with their
cases in one transaction (intake.py); the console triages the cases (handlers/console/casespage.py)."""
