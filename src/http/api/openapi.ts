/**
 * The OpenAPI 3.1 document of the admin API, generated from the same command definitions
 * as the routes: one operation per command (GET with query parameters for commands that
 * only read, POST with a JSON body for those that change state), its input as the JSON
 * Schema of the command's zod schema (input side: what a caller sends), and the problem
 * responses every operation can give.
 */
import { z } from "zod";
import type { CommandDefinition } from "../../core/commands.js";
import { PROBLEM_CONTENT_TYPE } from "../problem.js";

export const API_PREFIX = "/api/v1";

type Json = Record<string, unknown>;

export function commandPath(def: CommandDefinition<never>): string {
  return `${API_PREFIX}/${def.name.join("/")}`;
}

function operationId(def: CommandDefinition<never>): string {
  return def.name
    .map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1)))
    .join("")
    .replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
}

/** The JSON Schema of what a caller sends (defaults optional, transforms not applied). */
export function inputSchema(def: CommandDefinition<never>): Json {
  const schema = z.toJSONSchema(def.input as z.ZodType, { io: "input", unrepresentable: "any" }) as Json;
  delete schema.$schema;
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  for (const arg of def.args) {
    const p = properties[arg.name];
    if (p && p.description === undefined) p.description = arg.description;
    if (p && arg.deprecatedFor) {
      p.deprecated = true;
      p.description = `Deprecated: the same as \`${arg.deprecatedFor}\`.`;
    }
  }
  return schema;
}

/** Where a command's output schema is published: /api/v1/schemas/stats-clients.json. */
export function outputSchemaName(def: CommandDefinition<never>): string {
  return def.name.join("-");
}

export function outputSchemaPath(def: CommandDefinition<never>): string {
  return `${API_PREFIX}/schemas/${outputSchemaName(def)}.json`;
}

/** The command's output schema among the document's components: statsClientsOutput. */
function outputComponentName(def: CommandDefinition<never>): string {
  return `${operationId(def)}Output`;
}

/**
 * The JSON Schema (2020-12) of what a command's `--json` prints and its API answer's `data`
 * holds, from the command's output schema; undefined for a command that declares none.
 */
export function outputSchema(def: CommandDefinition<never>): Json | undefined {
  if (!def.output) return undefined;
  const schema = z.toJSONSchema(def.output as z.ZodType, { io: "output", unrepresentable: "any" }) as Json;
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: outputSchemaPath(def),
    title: `switchboard ${def.name.join(" ")} --json`,
    description: `The result of \`switchboard ${def.name.join(" ")} --json\`, and the \`data\` of ${def.mutates ? "POST" : "GET"} ${commandPath(def)}. Instants are milliseconds since 1970-01-01T00:00:00Z.`,
    ...schema,
  };
}

const problemResponse = (description: string) => ({
  description,
  content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: "#/components/schemas/Problem" } } },
});

const ERROR_RESPONSES = {
  "400": problemResponse("Invalid input (`errors` lists each field path)"),
  "401": problemResponse("No credentials, or an unknown token"),
  "403": problemResponse("Revoked token, not an administrator, or a failed CSRF check (cookie sessions)"),
  "404": problemResponse("The named object does not exist"),
  "409": problemResponse("Conflicts with the current state"),
  "500": problemResponse("Server failure"),
};

/** Query parameters of a read-only command: one per property of its input schema. */
function queryParameters(schema: Json): Json[] {
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: "query",
      required: required.has(name),
      ...(description !== undefined ? { description } : {}),
      schema: rest,
      // Repeatable values: ?exempt=a&exempt=b
      ...(JSON.stringify(rest).includes('"array"') ? { style: "form", explode: true } : {}),
    };
  });
}

function commandOperation(def: CommandDefinition<never>): Json {
  const schema = inputSchema(def);
  const output = outputSchema(def);
  const result = output
    ? {
        allOf: [
          { $ref: "#/components/schemas/CommandResult" },
          {
            type: "object",
            properties: {
              data: {
                $ref: `#/components/schemas/${outputComponentName(def)}`,
                description: `Also published at ${outputSchemaPath(def)}`,
              },
            },
          },
        ],
      }
    : { $ref: "#/components/schemas/CommandResult" };
  const op: Json = {
    operationId: operationId(def),
    summary: def.description,
    description: `Same as \`switchboard ${def.name.join(" ")}\`.${def.mutates ? " Changes state." : ""}`,
    tags: [def.name[0]],
    security: [{ bearerToken: [] }, { consoleSession: [] }],
    responses: {
      "200": {
        description: "Done",
        content: { "application/json": { schema: result } },
      },
      ...ERROR_RESPONSES,
    },
  };
  if (def.mutates) {
    // Unknown fields are refused (400), as the CLI refuses unknown options.
    const body = { ...schema, additionalProperties: false };
    op.requestBody = { required: true, content: { "application/json": { schema: body } } };
    op.parameters = [
      {
        name: "X-CSRF-Token",
        in: "header",
        required: false,
        description: "Required with a console session cookie, not with a bearer token",
        schema: { type: "string" },
      },
    ];
  } else {
    op.parameters = queryParameters(schema);
  }
  return op;
}

/** The document for these commands (the caller leaves out local-only ones). */
export function openApiDocument(commands: readonly CommandDefinition<never>[], serverUrl?: string): Json {
  const paths: Record<string, Json> = {};
  for (const def of commands)
    paths[commandPath(def)] = { [def.mutates ? "post" : "get"]: commandOperation(def) };

  paths[`${API_PREFIX}/health`] = {
    get: {
      operationId: "health",
      summary: "Liveness and storage check (no authentication)",
      tags: ["server"],
      security: [],
      responses: {
        "200": {
          description: "Serving",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Health" } } },
        },
        "503": problemResponse("Storage does not answer"),
      },
    },
  };
  paths[`${API_PREFIX}/session`] = {
    get: {
      operationId: "sessionShow",
      summary: "The browser session of the request: who is logged in and its CSRF token",
      tags: ["session"],
      security: [],
      responses: {
        "200": {
          description: "The session, or user null",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Session" } } },
        },
      },
    },
  };
  paths[`${API_PREFIX}/session/login`] = {
    post: {
      operationId: "sessionLogin",
      summary: "Console login of an account that holds the admin role (sets the session cookie)",
      tags: ["session"],
      security: [],
      requestBody: {
        required: true,
        content: {
          "application/json": {
            schema: {
              type: "object",
              properties: {
                username: { type: "string", minLength: 1 },
                password: { type: "string", minLength: 1 },
              },
              required: ["username", "password"],
            },
          },
        },
      },
      responses: {
        "200": {
          description: "Logged in",
          content: { "application/json": { schema: { $ref: "#/components/schemas/Session" } } },
        },
        "400": ERROR_RESPONSES["400"],
        "401": problemResponse("Wrong name or password, or not an administrator"),
        "415": problemResponse("The body must be JSON"),
        "429": problemResponse("Too many failed logins: wait `retryAfter` seconds"),
      },
    },
  };
  paths[`${API_PREFIX}/session/logout`] = {
    post: {
      operationId: "sessionLogout",
      summary: "Ends the browser session (needs its CSRF token)",
      tags: ["session"],
      security: [{ consoleSession: [] }],
      parameters: [{ name: "X-CSRF-Token", in: "header", required: true, schema: { type: "string" } }],
      responses: { "204": { description: "Logged out" }, "403": ERROR_RESPONSES["403"] },
    },
  };

  return {
    openapi: "3.1.0",
    info: {
      title: "Switchboard admin API",
      version: "1",
      description:
        "Every admin command of the `switchboard` CLI, over HTTP. Authenticate with an API token " +
        "(`switchboard token create --name NAME`, then `Authorization: Bearer sbt_…`) or a console session. " +
        "Errors are RFC 9457 problem details.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    tags: [...new Set(commands.map((c) => c.name[0]!))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearerToken: { type: "http", scheme: "bearer", description: "An API token, sbt_…" },
        consoleSession: { type: "apiKey", in: "cookie", name: "sb_session" },
      },
      schemas: {
        ...Object.fromEntries(
          commands.flatMap((def) => {
            const schema = outputSchema(def);
            if (!schema) return [];
            const { $schema: _dialect, $id: _id, ...body } = schema;
            return [[outputComponentName(def), body]];
          }),
        ),
        CommandResult: {
          type: "object",
          properties: {
            message: { type: "string", description: "One line (or a few) for people" },
            data: { description: "The structured result, as `--json` prints it" },
          },
          required: ["message"],
        },
        Problem: {
          type: "object",
          properties: {
            type: { type: "string", format: "uri-reference" },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            instance: { type: "string", format: "uri-reference" },
            errors: {
              type: "array",
              items: {
                type: "object",
                properties: { path: { type: "string" }, message: { type: "string" } },
                required: ["path", "message"],
              },
            },
          },
          required: ["type", "title", "status"],
        },
        Health: {
          type: "object",
          properties: {
            status: { type: "string", enum: ["ok"] },
            domain: { type: "string" },
            uptimeSeconds: { type: "number" },
            sessions: { type: "integer" },
          },
          required: ["status"],
        },
        Session: {
          type: "object",
          properties: {
            user: {
              oneOf: [
                { type: "null" },
                {
                  type: "object",
                  properties: {
                    kind: { type: "string", enum: ["console", "portal"] },
                    id: { type: "string" },
                  },
                  required: ["kind", "id"],
                },
              ],
            },
            csrfToken: { type: "string" },
          },
          required: ["user"],
        },
      },
    },
  };
}
