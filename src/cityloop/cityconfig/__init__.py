"""City configuration that staff edit at run time (loop policy, step limits, KPI weights).

Each capability owns a pydantic model of its settings with the documented defaults; this
package stores the city's overrides as JSON under a key and hands back a validated model.
"""
