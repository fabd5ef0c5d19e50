"""Network performance: two instances of the image exchange traffic (over a network of their own
under QEMU, over the cloud's network on a cloud), held against the instance type's throughput floor."""
