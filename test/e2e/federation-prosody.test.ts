/**
 * Federation with Prosody (Debian's prosody), started by the test on 127.0.0.2 from a
 * temporary configuration (helpers/prosody.ts); the scenarios are in
 * helpers/federation-suite.ts. In the certificate run Prosody has s2s_secure_auth.
 */
import { federationSuite } from "../helpers/federation-suite.js";
import { ProsodyServer, prosodySkip } from "../helpers/prosody.js";

federationSuite({
  peerName: "prosody",
  domain: "pr.test",
  host: "127.0.0.2",
  net: 78,
  skip: prosodySkip,
  start: (opts) => ProsodyServer.start(opts),
});
