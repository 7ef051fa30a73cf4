"""Working-time calendar: time limits, working schedule, holidays, deadline arithmetic."""
