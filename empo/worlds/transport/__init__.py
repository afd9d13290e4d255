"""Transport world: vehicles carrying humans on a road network."""
