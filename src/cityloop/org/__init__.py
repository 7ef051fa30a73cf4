"""Organisation: departments (handling and territorial), users, roles and scope."""
