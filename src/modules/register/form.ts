/**
 * The registration form of XEP-0077 in both shapes a client may use: the
 * legacy <username/>/<password/> fields and a Data Form (XEP-0004) with the
 * FORM_TYPE jabber:iq:register, and the reading of a submission in either.
 */
import { StanzaError } from "../../core/errors.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_DATA, NS_REGISTER } from "../../core/xml/namespaces.js";

/** The <query/> answering a registration get from an unregistered entity. */
export function registrationForm(instructions: string): XmlElement {
  return x(
    "query",
    { xmlns: NS_REGISTER },
    x("instructions", null, instructions),
    x("username"),
    x("password"),
    x(
      "x",
      { xmlns: NS_DATA, type: "form" },
      x("title", null, "Account registration"),
      x("instructions", null, instructions),
      x("field", { type: "hidden", var: "FORM_TYPE" }, x("value", null, NS_REGISTER)),
      x("field", { type: "text-single", label: "Username", var: "username" }, x("required")),
      x("field", { type: "text-private", label: "Password", var: "password" }, x("required")),
    ),
  );
}

export interface Submission {
  /** The <remove/> request (XEP-0077 §3.2). */
  remove: boolean;
  /** Field values by name; a field sent empty is "". */
  fields: Map<string, string>;
}

/** Reads a registration set: a submitted data form takes precedence over legacy fields (§4). */
export function readSubmission(query: XmlElement): Submission {
  const children = query.elements();
  const remove = children.some((c) => c.name === "remove");
  if (remove && children.length !== 1)
    throw new StanzaError("bad-request", "<remove/> must be the only child");
  const fields = new Map<string, string>();
  const form = query.getChild("x", NS_DATA);
  if (form) {
    if (form.attrs.type !== "submit") throw new StanzaError("bad-request", "expected a submitted data form");
    for (const field of form.getChildren("field")) {
      const name = field.attrs.var;
      if (name === undefined) continue;
      // Every registration field holds one value: a second one would leave it ambiguous which counts.
      if (fields.has(name)) throw new StanzaError("bad-request", `field ${name} is given more than once`);
      if (field.getChildren("value").length > 1)
        throw new StanzaError("bad-request", `field ${name} has more than one value`);
      fields.set(name, field.getChildText("value") ?? "");
    }
  } else {
    for (const c of children) {
      if (c.name === "instructions" || c.name === "registered" || c.name === "remove") continue;
      if (fields.has(c.name)) throw new StanzaError("bad-request", `<${c.name}/> is given more than once`);
      fields.set(c.name, c.text());
    }
  }
  return { remove, fields };
}

export { NS_DATA, NS_REGISTER } from "../../core/xml/namespaces.js";
