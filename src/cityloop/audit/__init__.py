"""The audit log: one immutable row per state change outside the case loop.

Case transitions have their own event table (``cases``); everything else — users, departments,
catalog imports, calendar overrides, ledgers — is recorded here.
"""
