"""Adapters to the outside: WeCom (crypto, callback parsing, API client, tokens, rate limits,
media) and the database (engine, types, migrations)."""
