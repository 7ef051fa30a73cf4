"""Ledgers (台账): rectification of inspection findings, hazard surveys and generic checklists.

One mechanism serves all three kinds: a ledger holds groups (方面/问题, 检查, 分类) and items
(整改措施, 隐患, 事项); every item goes through the same sign-off flow (销号) and look-back
(回头看). See ``docs/ledgers.md``.
"""
