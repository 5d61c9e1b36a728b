/** The static files of the portal and the console, as an HttpPlugin mounted at /assets. */
import type { HttpPlugin } from "../context.js";
import { ASSET_PREFIX, registerAssetRoutes } from "./files.js";

export function webAssets(): HttpPlugin {
  return {
    name: "web-assets",
    prefix: ASSET_PREFIX.replace(/\/$/, ""),
    register(app) {
      registerAssetRoutes(app);
    },
  };
}
