/**
 * The XMPP-over-WebSocket endpoint (RFC 7395) on the HTTP listener: GET /xmpp-websocket
 * upgraded with the `xmpp` subprotocol (@fastify/websocket over `ws`). Each connection is
 * checked against the connection limits and the TLS rule, then handed to the client
 * streams as a WebSocketTransport: from there on it is a client stream like any other.
 *
 * The TLS rule: a connection is secure when the listener serves wss, when a trusted
 * reverse proxy (http.trustProxy) says it received https (X-Forwarded-Proto), or when the
 * client is on a loopback address (its bytes never leave the host; browsers treat
 * localhost as a secure context too). Any other connection is refused with 403 unless
 * `allowPlaintext` is set, as a TCP client would be refused before STARTTLS.
 */
import type net from "node:net";
import websocket from "@fastify/websocket";
import type { FastifyRequest } from "fastify";
import type { ClientSession } from "../../core/session.js";
import type { ClientStreams } from "../../core/stream/streams.js";
import type { HttpPlugin } from "../../http/context.js";
import { ProblemError } from "../../http/problem.js";
import { WebSocketTransport } from "./ws-transport.js";

export const WEBSOCKET_PATH = "/xmpp-websocket";
export const XMPP_SUBPROTOCOL = "xmpp";

export interface WebSocketEndpointOptions {
  streams: ClientStreams;
  /**
   * Called for each connection before it is handed to the streams, with the upgrade request
   * (its cookies and Origin): the web chat recognises its own browser sessions here.
   */
  onConnection?: (request: FastifyRequest, session: ClientSession) => void;
}

/** An error of the connection or of the peer's frames (ws's WS_ERR_* codes, socket errors), not of this server. */
function isClientSocketError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === "string" && (code.startsWith("WS_ERR_") || code.startsWith("E"));
}

export function isLoopbackAddress(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.") || ip.startsWith("::ffff:127.");
}

/** Whether the connection's bytes are protected (see the file comment). */
export function connectionIsSecure(request: FastifyRequest): boolean {
  return request.protocol === "https" || isLoopbackAddress(request.ip);
}

export function websocketEndpoint(opts: WebSocketEndpointOptions): HttpPlugin {
  return {
    name: "xmpp-websocket",
    async register(app, ctx) {
      const { config } = ctx;
      const limits = config.limits;
      await app.register(websocket, {
        options: {
          // A message up to twice the stanza limit is read and answered with a policy-violation
          // stream error (the parser's limit); a larger one is cut off by ws itself (close 1009).
          maxPayload: limits.maxStanzaBytes * 2,
          // No compression: CPU per message, and compressed secrets under TLS invite CRIME-style attacks.
          perMessageDeflate: false,
          handleProtocols: (protocols) => (protocols.has(XMPP_SUBPROTOCOL) ? XMPP_SUBPROTOCOL : false),
        },
        // The server's stop closes every stream with <system-shutdown/> itself; connections
        // are not dropped before that.
        preClose(done) {
          done();
        },
        // The plugin's default logs every socket error at error level with its stack. What a
        // client causes (a frame over maxPayload, invalid UTF-8, a reset) ends in a close the
        // stream hears of, as on TCP; only a failure of the handler itself is the server's.
        errorHandler(error, socket, request) {
          if (isClientSocketError(error)) request.log.debug({ err: error }, "WebSocket connection failed");
          else request.log.error({ err: error }, "WebSocket handler failed");
          socket.terminate();
        },
      });
      app.get(
        WEBSOCKET_PATH,
        {
          websocket: true,
          preValidation: async (request) => {
            if (!request.ws) {
              throw new ProblemError(
                400,
                "bad-request",
                `${WEBSOCKET_PATH} serves XMPP over WebSocket (RFC 7395): open a WebSocket with the "xmpp" subprotocol`,
              );
            }
            const offered = String(request.headers["sec-websocket-protocol"] ?? "")
              .split(",")
              .map((p) => p.trim());
            if (!offered.includes(XMPP_SUBPROTOCOL)) {
              throw new ProblemError(
                400,
                "bad-request",
                'the "xmpp" WebSocket subprotocol is required (RFC 7395)',
              );
            }
            if (!connectionIsSecure(request) && !config.allowPlaintext) {
              throw new ProblemError(
                403,
                "forbidden",
                "TLS is required: connect with wss:// (or through a TLS-terminating proxy trusted with http.trustProxy)",
              );
            }
            if (!opts.streams.admits(request.ip)) {
              throw new ProblemError(503, "service-unavailable", "too many connections");
            }
          },
        },
        (ws, request) => {
          const socket = request.raw.socket as net.Socket;
          const transport = new WebSocketTransport({
            ws,
            socket,
            remoteAddress: request.ip,
            secure: connectionIsSecure(request),
          });
          const stream = opts.streams.accept(transport);
          opts.onConnection?.(request, stream.session);
        },
      );
    },
  };
}
