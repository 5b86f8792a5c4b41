"""The Azure broker: Microsoft Entra ID workload identity federation, served to the command
as a managed-identity endpoint (see docs/azure.md)."""
