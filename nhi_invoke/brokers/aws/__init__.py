"""AWS: STS web identity (optionally chained into a second role with tags), per-session
revocation by deny policy, and the container-credentials endpoint for --serve."""
