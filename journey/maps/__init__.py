"""Journey maps: the graph at activity and stage level (``graph``), filters (``filters``),
exports (``export``), the ideal journey and its deviations (``ideal``, ``deviations``) and
the clinic report (``report``). The commands are in ``journey.cli.maps``.

Nothing is imported here, so a command that needs one module loads only that one.
"""
