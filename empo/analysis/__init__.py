"""Analysis: learned-vs-exact comparison, power over time."""
