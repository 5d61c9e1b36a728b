/**
 * One-button console actions (suspend, revoke, kick, remind…): run the command as the
 * signed-in admin, then go back to the page the action came from with a flash message
 * saying what happened or why it could not be done.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { CommandResult } from "../../core/commands.js";
import { field, formBody, redirect, safeNext } from "../assets/respond.js";
import { userMessage } from "./commands.js";
import { CONSOLE, type ConsoleEnv } from "./env.js";

export async function act(
  env: ConsoleEnv,
  request: FastifyRequest,
  reply: FastifyReply,
  opts: {
    command: string;
    input: Record<string, unknown>;
    /** Where to go afterwards when the form names no valid `back` path. */
    back: string;
    success: (result: CommandResult) => string;
  },
): Promise<FastifyReply> {
  const back = safeNext(field(formBody(request), "back"), opts.back, CONSOLE);
  try {
    const result = await env.run(request, opts.command, opts.input);
    return redirect(request, reply, back, { kind: "success", text: opts.success(result) });
  } catch (err) {
    const message = userMessage(err);
    if (message === undefined) throw err;
    return redirect(request, reply, back, { kind: "error", text: message });
  }
}
