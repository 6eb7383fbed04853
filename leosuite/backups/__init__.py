"""Backups: compressed archives of a server's directory (:mod:`.archive` writes, checks
and restores them)."""
