/** The components module's top-level key (`componentPort`), as operators and the CLI name it. */
import { type ConfigSection, port } from "../../core/config.js";

export const componentsConfigSection = {
  keys: {
    /** External components (XEP-0114 gateways), on loopback unless modules.components.bind says otherwise; 0 disables it. */
    componentPort: port.default(5347),
  },
  env: { componentPort: "number" },
} satisfies ConfigSection;

declare module "../../core/config.js" {
  interface ConfigSections {
    componentPort: number;
  }
}
