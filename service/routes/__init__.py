"""The routes, one module per group: read (search and browse), score, write, ops (health,
readiness, metrics, info), page (the web page and its assets)."""
