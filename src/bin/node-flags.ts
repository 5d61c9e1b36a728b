/**
 * V8 options the server is launched with (the `switchboard` shebang, `npm start`
 * and the benchmark use the same ones).
 *
 * A young generation of 4 MiB per semi-space instead of V8's default of up to
 * 16 MiB: measured with `npm run bench`, it halves the resident memory of 1,000
 * idle sessions (31 → 15 KiB each) for about 7 % fewer logins and messages per
 * CPU-second. An IM server holds many idle sessions, so memory wins.
 */
export const SERVER_NODE_FLAGS = ["--max-semi-space-size=4"];
