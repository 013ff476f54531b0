// get_token.js MODE SCOPE: one token through @azure/identity, as user code
// would get it (MODE mi: ManagedIdentityCredential, dac:
// DefaultAzureCredential). Prints {"token", "expires_on"} on stdout.
"use strict";
const id = require("@azure/identity");
const [mode, scope] = process.argv.slice(2);
const cred = mode === "mi" ? new id.ManagedIdentityCredential() : new id.DefaultAzureCredential();
cred.getToken(scope).then((t) => {
  console.log(JSON.stringify({ token: t.token, expires_on: Math.floor(t.expiresOnTimestamp / 1000) }));
}).catch((e) => { console.error(String(e && e.message || e)); process.exit(1); });
