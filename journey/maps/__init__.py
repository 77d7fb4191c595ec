"""Journey maps: the graph at activity and stage level, filters, exports, the ideal
journey and its deviations. The clinic report is ``journey.maps.report``; the commands
are in ``journey.cli.maps``."""

from journey.maps.deviations import IdealResult, compare
from journey.maps.export import to_dot, to_graphml, to_json, to_svg, write_map
from journey.maps.filters import JourneyFilter
from journey.maps.graph import EXIT, START, JourneyMap, build_map
from journey.maps.ideal import IdealJourney, load_ideal

__all__ = ["EXIT", "START", "IdealJourney", "IdealResult", "JourneyFilter", "JourneyMap", "build_map",
           "compare", "load_ideal", "to_dot", "to_graphml", "to_json", "to_svg", "write_map"]
