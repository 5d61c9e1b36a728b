/**
 * Entity Time (XEP-0202) of the server: UTC from the server clock and the
 * offset of the server's time zone (or "Z" when configured to show UTC only),
 * both in XEP-0082 formats.
 */
import { z } from "zod";
import { StanzaError } from "../../core/errors.js";
import { defineModule } from "../../core/module.js";
import { x } from "../../core/xml/element.js";
import { NS_TIME } from "../../core/xml/namespaces.js";

/** XEP-0082 dateTime in UTC, to the second (fractions are optional and some clients reject them). */
export function xmppDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** XEP-0082 time zone definition for an offset east of UTC in minutes: "Z" for zero, else ±hh:mm. */
export function tzd(offsetMinutes: number): string {
  if (offsetMinutes === 0) return "Z";
  const sign = offsetMinutes > 0 ? "+" : "-";
  const abs = Math.abs(offsetMinutes);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export default defineModule({
  name: "time",
  description: "Entity time of the server (XEP-0202)",
  xeps: [{ xep: "0202", version: "2.0", status: "complete" }],
  options: z.object({
    /** "local": the offset of the server's time zone at that instant; "utc": always Z. */
    zone: z.enum(["local", "utc"]).default("local"),
  }),
  setup(ctx) {
    const { clock } = ctx;
    ctx.addFeature(NS_TIME, "host");

    ctx.handleIq({ target: "host", type: "get", xmlns: NS_TIME }, ({ payload }) => {
      if (payload.name !== "time") throw new StanzaError("bad-request", "expected a <time/> element");
      const now = clock.now();
      // getTimezoneOffset() is minutes *behind* UTC, so east of UTC is its negation.
      const offset = ctx.options.zone === "utc" ? 0 : -new Date(now).getTimezoneOffset();
      return x("time", { xmlns: NS_TIME }, x("tzo", null, tzd(offset)), x("utc", null, xmppDateTime(now)));
    });
  },
});

export { NS_TIME } from "../../core/xml/namespaces.js";
