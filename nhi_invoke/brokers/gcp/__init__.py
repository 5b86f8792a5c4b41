"""GCP: Workload Identity Federation, service-account impersonation, and the metadata
endpoint for --serve."""
