"""Sidebar: the client manager's chat toolbar page (聊天工具栏) in WeCom, mounted at ``/sidebar`` —
who the customer is, what is open, what happened, and approved words to send in one tap."""

# Deliberately empty: importing a feature's api.py must not load its handlers (features require
# each other's api); the composition root imports handlers.<name>.feature.
