"""The Panel dashboard: live leaderboard, trends, lead audit, rule editor, exports.

Each view lives in its own module and declares its controls as parameters.
:func:`dashboards.app.serve` runs the dashboard; ``scorestream dashboard``
and ``scorestream up`` call it.
"""
