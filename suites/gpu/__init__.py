"""GPU presence: where the instance type promises GPUs, they are there and their driver binds them."""
