/**
 * Contact addresses for XMPP services (XEP-0157): the operator's addresses for abuse reports,
 * administration, security issues, support and the rest, published as the
 * `http://jabber.org/network/serverinfo` form in the server's disco#info (XEP-0128), where
 * clients and other servers' operators look for them. Nothing is published until one is set.
 */
import { z } from "zod";
import { defineModule } from "../../core/module.js";
import { type XmlElement, x } from "../../core/xml/element.js";
import { NS_DATA } from "../../core/xml/namespaces.js";

export const SERVERINFO_FORM_TYPE = "http://jabber.org/network/serverinfo";

/** The kinds of address XEP-0157 registers, each published as `<kind>-addresses`. */
export const CONTACT_KINDS = [
  "abuse",
  "admin",
  "feedback",
  "sales",
  "security",
  "status",
  "support",
] as const;
type ContactKind = (typeof CONTACT_KINDS)[number];

/** A URI with a scheme (`mailto:`, `xmpp:`, `https:` …), as the XEP's values are. */
const ContactUri = z
  .string()
  .trim()
  .regex(
    /^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/,
    "expected a URI such as mailto:abuse@example.org or xmpp:admin@example.org",
  );

const Options = z
  .object(
    Object.fromEntries(CONTACT_KINDS.map((k) => [k, z.array(ContactUri).default([])])) as {
      [K in ContactKind]: z.ZodDefault<z.ZodArray<typeof ContactUri>>;
    },
  )
  .strict();

/** The serverinfo form for the configured addresses, or undefined when there are none. */
export function serverInfoForm(addresses: Record<ContactKind, string[]>): XmlElement | undefined {
  const kinds = CONTACT_KINDS.filter((k) => addresses[k].length > 0);
  if (kinds.length === 0) return undefined;
  return x(
    "x",
    { xmlns: NS_DATA, type: "result" },
    x("field", { var: "FORM_TYPE", type: "hidden" }, x("value", null, SERVERINFO_FORM_TYPE)),
    ...kinds.map((k) =>
      x(
        "field",
        { var: `${k}-addresses`, type: "list-multi" },
        ...addresses[k].map((uri) => x("value", null, uri)),
      ),
    ),
  );
}

export default defineModule({
  name: "contact-addresses",
  description: "Contact addresses of the service in its disco#info (XEP-0157)",
  xeps: [{ xep: "0157", version: "1.1", status: "complete" }],
  options: Options,
  setup(ctx) {
    const form = serverInfoForm(ctx.options);
    if (form) ctx.addDiscoExtension(form);
  },
});
