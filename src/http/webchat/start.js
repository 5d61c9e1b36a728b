// Starts Converse.js (served from node_modules/converse.js/dist) for this server: its
// WebSocket endpoint on the page's own origin (so the browser sends the web chat's grant
// cookie, see grants.ts) and its domain, read from the page. No chat code of our own.
import converse from "/chat/assets/converse.min.js";

const page = document.body.dataset;
const websocket = new URL("/xmpp-websocket", window.location.href);
websocket.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";

// The fullscreen view's footer shows the Converse.js sponsors' logos from conversejs.org: the
// page loads nothing from other sites (its CSP would refuse them), so the footer is left out.
customElements.define("converse-footer", class extends HTMLElement {});

converse.initialize({
  websocket_url: websocket.href,
  discover_connection_methods: false,
  locked_domain: page.domain,
  view_mode: "fullscreen",
  assets_path: "/chat/assets/",
  allow_registration: false,
  // "Start a new chat" with any address, not only with contacts.
  allow_non_roster_messaging: true,
  auto_reconnect: true,
  // OMEMO needs WebAssembly ('wasm-unsafe-eval'); the server offers no PEP devices for it yet.
  blacklisted_plugins: ["converse-omemo"],
  persistent_store: "sessionStorage",
  i18n: "en",
  loglevel: "warn",
  show_client_info: false,
  play_sounds: false,
});
