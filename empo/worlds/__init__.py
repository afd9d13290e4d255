"""World models: tabular games, paradigm worlds, MultiGrid and transport."""
