"""Small real tabular data sets shipped with xpann, and seeded synthetic generators."""
