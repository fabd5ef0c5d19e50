"""Network performance: two instances of the image exchange traffic over a network of their own,
held against the instance type's throughput floor."""
