"""Business capabilities: each package has a Blueprint that parses and maps, and use cases that take ports."""
