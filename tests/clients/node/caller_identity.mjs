// The AWS SDK for JavaScript v3 as a step's command: which identity does it end up with?
//
//   node caller_identity.mjs [PROVIDER] [COUNT] [PAUSE_SECONDS] [CLIENTS] [UNTIL_KEYS]
//
// PROVIDER: "default" (STSClient's own default chain), "node-provider-chain"
// (fromNodeProviderChain()) or "container-metadata" (fromContainerMetadata()). Calls
// GetCallerIdentity COUNT times, PAUSE_SECONDS apart, and prints one JSON line per call: the
// ARN and the access key id it used (never the secret). CLIENTS "fresh" makes a new client
// (and provider) for every call, so that every call fetches credentials (an SDK caches them
// until five minutes before they expire); the default, "shared", one client for all. With
// UNTIL_KEYS, it stops once it has seen that many different access key ids. A failure prints
// one JSON line with the error's name and message, and exits 1.
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { fromContainerMetadata, fromNodeProviderChain } from "@aws-sdk/credential-providers";

const [provider = "default", count = "1", pause = "0", clients = "shared", untilKeys = "0"] =
  process.argv.slice(2);
const providers = {
  default: undefined,
  "node-provider-chain": () => fromNodeProviderChain(),
  "container-metadata": () => fromContainerMetadata(),
};
if (!(provider in providers)) {
  console.error(`unknown provider ${provider}: one of ${Object.keys(providers).join(", ")}`);
  process.exit(2);
}
const make = providers[provider];
const newClient = () => new STSClient(make ? { credentials: make() } : {});
const shared = newClient();
const seen = new Set();
try {
  for (let call = 0; call < Number(count); call += 1) {
    if (call > 0) await new Promise((resolve) => setTimeout(resolve, Number(pause) * 1000));
    const client = clients === "fresh" ? newClient() : shared;
    const identity = await client.send(new GetCallerIdentityCommand({}));
    const credentials = await client.config.credentials();
    seen.add(credentials.accessKeyId);
    console.log(
      JSON.stringify({
        client: "aws-sdk-js-v3",
        provider,
        arn: identity.Arn,
        access_key_id: credentials.accessKeyId,
      }),
    );
    if (Number(untilKeys) > 0 && seen.size >= Number(untilKeys)) break;
  }
} catch (error) {
  console.log(JSON.stringify({ client: "aws-sdk-js-v3", provider, error: `${error.name}: ${error.message}` }));
  process.exit(1);
}
