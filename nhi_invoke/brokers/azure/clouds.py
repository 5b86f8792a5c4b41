"""The Azure clouds `--azure-cloud` names: where Entra is, and what the default scope is.

The values are those of azure-identity's `AzureAuthorityHosts` and the Azure CLI's cloud
table (`azure/cli/core/cloud.py`): `resource_manager` is ARM's endpoint (the default scope is
it + `.default`), `cli_resource` the identifier the Azure CLI asks ARM tokens for. Both name
the same API, so a command allowed one may ask for the other.
"""

from __future__ import annotations

from typing import NamedTuple


class AzureCloud(NamedTuple):
    """One cloud's names (a named tuple: cheaper to define than a dataclass)."""

    name: str
    authority_host: str
    resource_manager: str
    cli_resource: str

    @property
    def default_scope(self) -> str:
        return self.resource_manager.rstrip("/") + "/.default"

    def resource_key(self, resource: str) -> str:
        """What a resource is compared by: no trailing slash, ARM's two names as one."""
        key = resource.rstrip("/")
        return self.resource_manager.rstrip("/") if key == self.cli_resource.rstrip("/") else key


CLOUDS = {
    cloud.name: cloud
    for cloud in (
        AzureCloud(
            "AzureCloud",
            "https://login.microsoftonline.com",
            "https://management.azure.com/",
            "https://management.core.windows.net/",
        ),
        AzureCloud(
            "AzureUSGovernment",
            "https://login.microsoftonline.us",
            "https://management.usgovcloudapi.net/",
            "https://management.core.usgovcloudapi.net/",
        ),
        AzureCloud(
            "AzureChinaCloud",
            "https://login.chinacloudapi.cn",
            "https://management.chinacloudapi.cn/",
            "https://management.core.chinacloudapi.cn/",
        ),
    )
}
