"""Console: the web console for ops admins, branch heads, team leads and auditors, mounted at
``/console`` — WeCom sign-in, roles from ``sop/console.yaml``, CSRF, an audit log of every action."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
