/**
 * Real headless Chromium for the browser tests: the Debian binary driven by
 * playwright-core, one browser per test file, contexts sized like a laptop
 * screen, screenshots kept in test-artifacts/screenshots/, and the page errors
 * (uncaught exceptions, console errors, failed requests) a page must not have.
 * A missing Chromium skips the tests, or fails them with
 * SWITCHBOARD_REQUIRE_SERVICES=1.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";
import { REPO_ROOT } from "./server.js";
import { requirePeer } from "./services.js";

export const CHROMIUM = "/usr/bin/chromium";
export const SCREENSHOTS = path.join(REPO_ROOT, "test-artifacts/screenshots");
export const DOWNLOADS = path.join(REPO_ROOT, "test-artifacts/downloads");
/** The viewport of every context (and of the screenshots). */
export const VIEWPORT = { width: 1280, height: 800 };
/** How long one browser action or expectation may take (generous: two shared cores). */
export const ACTION_MS = 15_000;

/** false when Chromium can run, else the skip message (throws when it is required). */
export const chromiumSkip = await requirePeer(`Chromium (${CHROMIUM})`, () => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return "install the Debian package chromium";
  }
});

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}

const CLIENT_ERROR = /^Failed to load resource: the server responded with a status of 4\d\d/;

/**
 * What went wrong in the pages of a context: uncaught exceptions, console errors
 * (a Content-Security-Policy violation is one) and HTTP 5xx answers. A test
 * asserts the list is empty at its end.
 */
export class PageProblems {
  readonly problems: string[] = [];

  watch(page: Page, label: string): void {
    page.on("pageerror", (err) => this.problems.push(`${label}: uncaught ${err.name}: ${err.message}`));
    page.on("console", (msg) => {
      // Chromium logs every 4xx answer (a form returned with its errors is a 422): not a fault.
      if (msg.type() !== "error" || CLIENT_ERROR.test(msg.text())) return;
      const where = msg.location().url || page.url();
      this.problems.push(`${label}: console error on ${where}: ${msg.text()}`);
    });
    page.on("response", (res) => {
      if (res.status() >= 500) this.problems.push(`${label}: HTTP ${res.status()} for ${res.url()}`);
    });
  }
}

/** Deletes the screenshots whose names start with `prefix` (those of an earlier run). */
export function removeScreenshots(prefix: string): void {
  if (!existsSync(SCREENSHOTS)) return;
  for (const f of readdirSync(SCREENSHOTS)) {
    if (f.startsWith(prefix)) rmSync(path.join(SCREENSHOTS, f), { force: true });
  }
}

/** A fresh context (own cookies) with one page, watched for problems. */
export async function openPage(
  browser: Browser,
  baseURL: string,
  label: string,
  problems: PageProblems,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({
    baseURL,
    viewport: VIEWPORT,
    deviceScaleFactor: 1,
    acceptDownloads: true,
    locale: "en-GB",
    timezoneId: "UTC",
  });
  context.setDefaultTimeout(ACTION_MS);
  context.setDefaultNavigationTimeout(ACTION_MS);
  const page = await context.newPage();
  problems.watch(page, label);
  return { context, page };
}

/** Saves the visible part of the page as test-artifacts/screenshots/<name>.png; returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  // Playwright's "disabled animations" and "hidden caret" leave an empty style attribute on
  // elements, which htmx later copies when it settles a swap: a style-src CSP violation the
  // product did not cause. The pages have no animations; the caret stays.
  await page.screenshot({ path: file, type: "png", caret: "initial" });
  return file;
}

/** The text of an element (white space collapsed), waiting for it to be attached. */
export async function textOf(locator: Locator, what: string, timeoutMs = ACTION_MS): Promise<string> {
  try {
    await locator.first().waitFor({ state: "attached", timeout: timeoutMs });
  } catch {
    throw new Error(`no ${what} on the page within ${timeoutMs / 1000} s (${locator})`);
  }
  return ((await locator.first().textContent()) ?? "").replace(/\s+/g, " ").trim();
}

/**
 * Waits for a flash message of the kind ("success", "error", "info") whose text matches:
 * after an action, the page may still show the previous page's flash until the answer
 * arrives. Fails with the flashes on the page.
 */
export async function flash(page: Page, kind: string, text: RegExp, timeoutMs = ACTION_MS): Promise<string> {
  const wanted = page.getByTestId(`flash-${kind}`).filter({ hasText: text });
  try {
    await wanted.first().waitFor({ state: "attached", timeout: timeoutMs });
  } catch {
    const shown = await page
      .locator("[data-testid^='flash-']")
      .allTextContents()
      .catch(() => []);
    throw new Error(
      `no ${kind} message matching ${text} within ${timeoutMs / 1000} s on ${page.url()}; messages shown: ${
        shown.map((t) => JSON.stringify(t.trim())).join(", ") || "none"
      }`,
    );
  }
  return textOf(wanted, `the ${kind} message`);
}

/**
 * Reloads the page until `check` returns a truthy value (figures written by the
 * server every few hundred milliseconds); fails with what was awaited and what the
 * last check saw.
 */
export async function reloadUntil<T>(
  page: Page,
  check: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = ACTION_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result) return result;
      last = result;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not seen within ${timeoutMs / 1000} s on ${page.url()} (last check: ${last})`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    await page.reload();
  }
}

/**
 * Evaluates `expression` in the page until it is truthy (a page being updated by htmx
 * may be between two states); fails with what was awaited and what it last saw.
 */
export async function pageCondition(
  page: Page,
  expression: string,
  what: string,
  seen: string,
  timeoutMs = ACTION_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await page.evaluate(expression)) return;
      last = await page.evaluate(seen);
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not so within ${timeoutMs / 1000} s (saw: ${last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A datetime-local value (UTC, seconds included) for an instant. */
export function utcInputValue(at: number): string {
  return new Date(at).toISOString().slice(0, 19);
}

/**
 * The form control labelled exactly `label` (the label of a required field also
 * shows a "*", which is not part of its name).
 */
export function byLabel(scope: Page | Locator, label: string): Locator {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return scope.getByLabel(new RegExp(`^\\s*${escaped}(\\s*\\*)?\\s*$`));
}
