/**
 * The upload service's face on the HTTP listener, under /upload: PUT stores a file into a
 * slot (checked by UploadStore.put), GET and HEAD serve it. Files are served as what they
 * were uploaded as, but only raster images are shown inline: anything else is an
 * attachment, with nosniff and a sandboxing Content-Security-Policy, so an uploaded page
 * or SVG cannot run in the server's origin.
 *
 * Web clients on other origins upload and show files too: every answer allows any origin
 * (the slot's secret, not a cookie, authorizes a PUT), and OPTIONS answers the preflight of
 * a PUT with its Authorization and Content-Type headers. GET serves byte ranges (RFC 9110
 * §14), which browsers need to play audio and video and to resume downloads.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { FastifyReply } from "fastify";
import type { HttpPlugin } from "../../http/context.js";
import { ProblemError, type ProblemType } from "../../http/problem.js";
import { shownFilename } from "./filename.js";
import { mediaType, UploadRefused, type UploadStore } from "./store.js";

export const UPLOAD_PATH = "/upload";

const INLINE_TYPES = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/avif",
  "image/bmp",
]);

const PROBLEMS: Record<number, ProblemType> = {
  400: "bad-request",
  403: "forbidden",
  404: "not-found",
  409: "conflict",
  411: "bad-request",
  413: "payload-too-large",
};

/** The Authorization header's secret: `Bearer <secret>` (the header the slot hands out). */
function secretOf(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  return m?.[1];
}

export function contentDisposition(type: string, filename: string): string {
  const kind = INLINE_TYPES.has(mediaType(type)) ? "inline" : "attachment";
  const shown = shownFilename(filename);
  const ascii = shown.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(shown)}`;
}

/**
 * The plugin; `listening` receives the listener's public URL once it is known, so slots
 * can point at it.
 */
export function uploadHttp(store: UploadStore, listening: (publicUrl: () => string) => void): HttpPlugin {
  return {
    name: "upload",
    prefix: UPLOAD_PATH,
    register(app, ctx) {
      listening(() => ctx.publicUrl);
      // The body is the file, whatever its type: it is streamed to disk, never parsed.
      app.removeAllContentTypeParsers();
      app.addContentTypeParser("*", (_request, _payload, done) => done(null));
      // Every answer of the service, problems included, so a page on another origin can read it.
      app.addHook("onSend", async (_request, reply, payload) => {
        reply.header("access-control-allow-origin", "*");
        return payload;
      });
      app.options("/:id/:name", { config: { csrf: false } }, (_request, reply) =>
        reply
          .code(204)
          .header("access-control-allow-methods", "GET, HEAD, PUT, OPTIONS")
          .header("access-control-allow-headers", "Authorization, Content-Type")
          .header("access-control-max-age", "86400")
          .send(),
      );

      app.put<{ Params: { id: string; name: string } }>(
        "/:id/:name",
        // The slot's secret authenticates the request (no browser session, no CSRF token).
        { config: { csrf: false } },
        async (request, reply) => {
          const length = request.headers["content-length"];
          try {
            await store.put(
              request.params.id,
              request.params.name,
              {
                secret: secretOf(request.headers.authorization),
                length: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
                contentType: request.headers["content-type"],
              },
              request.raw,
            );
          } catch (err) {
            if (err instanceof UploadRefused)
              throw new ProblemError(err.status, PROBLEMS[err.status] ?? "bad-request", err.message);
            throw err;
          }
          return reply.code(201).send();
        },
      );

      const serve = async (
        id: string,
        name: string,
        range: string | undefined,
        reply: FastifyReply,
        body: boolean,
      ) => {
        const record = await store.get(id);
        if (record?.state !== "stored" || record.filename !== name)
          throw new ProblemError(404, "not-found", "no such file");
        // Another node of a cluster may have stored it, or it was removed by hand.
        const file = store.filePath(id, record);
        if (!(await stat(file).catch(() => undefined))?.isFile())
          throw new ProblemError(404, "not-found", "the file is not on this server");
        const type = record.servedType ?? "application/octet-stream";
        reply
          .header("content-type", type)
          .header("content-disposition", contentDisposition(type, record.filename))
          .header("x-content-type-options", "nosniff")
          .header("content-security-policy", "default-src 'none'; sandbox")
          .header("cache-control", "private, max-age=86400")
          .header("accept-ranges", "bytes")
          .header("access-control-expose-headers", "Content-Length, Content-Range, Accept-Ranges");
        const wanted = range === undefined ? undefined : byteRange(range, record.size);
        if (wanted === "unsatisfiable")
          return reply.code(416).header("content-range", `bytes */${record.size}`).send();
        if (wanted === undefined) {
          reply.header("content-length", String(record.size));
          return body ? reply.send(createReadStream(file)) : reply.send();
        }
        const { start, end } = wanted;
        reply
          .code(206)
          .header("content-range", `bytes ${start}-${end}/${record.size}`)
          .header("content-length", String(end - start + 1));
        return body ? reply.send(createReadStream(file, { start, end })) : reply.send();
      };
      app.get<{ Params: { id: string; name: string } }>(
        "/:id/:name",
        { exposeHeadRoute: false },
        (request, reply) => serve(request.params.id, request.params.name, request.headers.range, reply, true),
      );
      app.head<{ Params: { id: string; name: string } }>("/:id/:name", (request, reply) =>
        serve(request.params.id, request.params.name, request.headers.range, reply, false),
      );
    },
  };
}

/**
 * The one range of a `Range: bytes=…` header (first-last, first-, or -suffix) within a file of
 * `size` bytes. Several ranges, other units and malformed headers are served whole (RFC 9110
 * §14.2 lets a server ignore Range); a range that starts past the end is unsatisfiable (416).
 */
export function byteRange(
  header: string,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    return size === 0 ? "unsatisfiable" : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}
