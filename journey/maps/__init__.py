"""Journey maps: the graph at activity and stage level, filters, exports, the ideal
journey and its deviations, and the clinic report."""
