/**
 * Federation with ejabberd (Debian's ejabberd), started by the test on 127.0.0.3 with its own
 * Erlang node, configuration and spool (helpers/ejabberd.ts); the scenarios are in
 * helpers/federation-suite.ts.
 */
import { EjabberdServer, ejabberdSkip } from "../helpers/ejabberd.js";
import { federationSuite } from "../helpers/federation-suite.js";

federationSuite({
  peerName: "ejabberd",
  domain: "ej.test",
  host: "127.0.0.3",
  net: 79,
  skip: ejabberdSkip,
  start: (opts) => EjabberdServer.start(opts),
});
