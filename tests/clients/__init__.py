"""Real clients run as a step's command, each printing the identity it ended up with."""
