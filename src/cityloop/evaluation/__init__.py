"""Evaluation (综合评价): KPIs from the event history, composite index, 12345 three rates,
双随机 audits and the monthly report (月考评). See docs/evaluation.md."""
