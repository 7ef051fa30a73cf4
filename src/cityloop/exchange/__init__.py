"""Interoperability with what already exists: bulk import of historical cases, export of
filtered cases, and the upward exchange (an outbox, a pusher and a receiver) through which city
platforms report to a province-level cityloop.

The case loop stays the single writer of live cases: an import writes finished history in one
bulk transaction, the outbox is filled inside the case loop's own transaction (``outbox.record``)
and the receiver keeps what other cities send in tables of its own, never in ``case_file``.
"""
