// get_token.js MODE SCOPE: one token through @azure/identity, as user code
// would get it (MODE mi: ManagedIdentityCredential, dac:
// DefaultAzureCredential, mi_claims: ManagedIdentityCredential asked twice,
// the second time with the claims challenge CLAIMS, the 4th argument, as a
// client retrying a 401 does). Prints {"token", "expires_on"} on stdout.
"use strict";
const id = require("@azure/identity");
const [mode, scope, claims] = process.argv.slice(2);
const cred = mode === "dac" ? new id.DefaultAzureCredential() : new id.ManagedIdentityCredential();
const first = mode === "mi_claims" ? cred.getToken(scope) : Promise.resolve();
first.then(() => cred.getToken(scope, mode === "mi_claims" ? { claims } : {})).then((t) => {
  console.log(JSON.stringify({ token: t.token, expires_on: Math.floor(t.expiresOnTimestamp / 1000) }));
}).catch((e) => { console.error(String(e && e.message || e)); process.exit(1); });
