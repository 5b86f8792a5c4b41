#!/usr/bin/env bash
# A step's command using the Azure CLI as a user would: `az login --identity`, then a token.
# The emulator stands for a private cloud, so the cloud is registered first, in the private
# AZURE_CONFIG_DIR nhi-invoke made for the command (what `az cloud register` would write; it
# would also fetch ARM's metadata, which the emulator does not serve). Prints the profile and
# only the fingerprint of the token (stdout is the test's to read). AZ is the az binary.
set -euo pipefail
cat > "$AZURE_CONFIG_DIR/clouds.config" <<CLOUD
[NhiSandbox]
endpoint_resource_manager = $AZURE_AUTHORITY_HOST/
endpoint_active_directory = $AZURE_AUTHORITY_HOST
endpoint_active_directory_resource_id = https://management.core.windows.net/
endpoint_management = https://management.core.windows.net/
CLOUD
printf '[cloud]\nname = NhiSandbox\n' > "$AZURE_CONFIG_DIR/config"
"$AZ" login --identity --client-id "$AZURE_CLIENT_ID" --allow-no-subscriptions -o none
"$AZ" account show --query "{user: user.name, type: user.type, tenant: tenantId}" -o json |
  tr -d '\n '
echo
"$AZ" account get-access-token --query accessToken -o tsv |
  python3 -c 'import hashlib, sys; print("token sha256:" + hashlib.sha256(sys.stdin.read().strip().encode()).hexdigest())'
echo "config dir: $AZURE_CONFIG_DIR"
