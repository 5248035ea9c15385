// The web page at `/`, in a real browser: Debian's chromium driven by playwright-core, against
// the api and a worker on the real services. A person enters a key, sends a file of 100,000
// rows and watches it land, reads the rows a bad file had rejected, cancels an upload, and
// does it on a phone's width too. Screenshots go to a folder outside git, named in the output.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { buildWeb } from "../scripts/build-web.ts";
import { PAGE_CSP } from "../src/api/web.routes.ts";
import {
  type InProcess,
  startInProcess,
  startWorkerInProcess,
  type TestEnv,
  testEnv,
} from "./support/stack.ts";

// What the callbacks given to page.evaluate find in the browser; the tests' types know no DOM.
declare const document: any;
declare const window: any;
declare const sessionStorage: any;
declare const localStorage: any;

const CHROMIUM = "/usr/bin/chromium";
const KEY = `web-${crypto.randomUUID()}`;
const ROWS = 100_000;

let env: TestEnv;
let api: InProcess;
let browser: Browser;
let files: string;
let webRoot: string;
let artifacts: string;
let stopWorker: (() => Promise<void>) | undefined;

before(async () => {
  files = await mkdtemp(join(tmpdir(), "sluice-web-files-"));
  // Built as `npm run build` builds it, into a folder of the test's own that no other build
  // running alongside (the Dockerfile's test runs one) can empty under the page.
  webRoot = join(files, "web");
  await buildWeb(webRoot);
  artifacts = await mkdtemp(join(tmpdir(), "sluice-web-screenshots-"));
  console.log(`web page screenshots: ${artifacts}`);
  // No worker at first: an upload stays unfinished until the test starts one.
  env = await testEnv({ API_KEYS: `acme:${KEY}`, BATCH_SIZE: "1000" });
  api = await startInProcess(env, { worker: false, webRoot });
  browser = await chromium
    .launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-background-networking"],
    })
    .catch((err: Error) => {
      throw new Error(`${CHROMIUM} did not start (apt-get install -y chromium): ${err.message}`);
    });
});

after(async () => {
  await browser?.close();
  await stopWorker?.();
  await api?.stop();
  await env?.cleanup();
  if (files) await rm(files, { recursive: true, force: true });
});

/** Every request the page makes, and every console error (a CSP violation is one). */
type Watched = { page: Page; context: BrowserContext; urls: string[]; problems: string[] };

async function openPage(viewport = { width: 1100, height: 900 }): Promise<Watched> {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  // Generous: the machine is shared, and each wait ends on its condition, not on the clock.
  context.setDefaultTimeout(120_000);
  const page = await context.newPage();
  const urls: string[] = [];
  const problems: string[] = [];
  page.on("request", (request) => urls.push(request.url()));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (err) => problems.push(err.message));
  const response = await page.goto(api.url);
  assert.equal(response?.status(), 200);
  return { page, context, urls, problems };
}

async function useKey(page: Page) {
  await page.getByRole("textbox", { name: "API key" }).fill(KEY);
  await page.getByRole("button", { name: "Use key" }).click();
  await page.getByText("Key in use.").waitFor();
}

async function upload(page: Page, path: string): Promise<string> {
  await page.getByLabel("Choose a CSV file").setInputFiles(path);
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  const id = page.locator("#current-id");
  await id.filter({ hasText: /^id [0-9a-f-]{36}$/ }).waitFor();
  return ((await id.textContent()) ?? "").replace(/^id /, "");
}

const statusIs = (page: Page, status: string) =>
  page.locator("#current-status", { hasText: new RegExp(`^${status}$`) }).waitFor();

async function meter(page: Page, label: string) {
  return page
    .getByRole("progressbar", { name: label })
    .evaluate((bar: any) => ({ value: bar.value as number, max: bar.max as number }));
}

async function screenshot(page: Page, name: string) {
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
}

async function uploadRow(id: string) {
  const { rows } = await env.sql.query("select status, rows_landed from uploads where id = $1", [
    id,
  ]);
  return rows[0] as { status: string; rows_landed: number };
}

const csv = (rows: string[]) => `id,name,city\n${rows.join("\n")}\n`;

/** Visible text whose colour has less than 4.5:1 against its background (WCAG AA). */
function lowContrast(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const rgb = (colour: string) => (colour.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r = 0, g = 0, b = 0]: number[]) => {
      const linear = (v: number) => {
        const c = v / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    };
    const backgroundOf = (element: any): number[] => {
      for (let e = element; e; e = e.parentElement) {
        const colour = rgb(window.getComputedStyle(e).backgroundColor);
        if (colour.length === 3 || (colour[3] ?? 0) > 0) return colour;
      }
      return [255, 255, 255];
    };
    const low: string[] = [];
    for (const element of Array.from(document.querySelectorAll("body *") as ArrayLike<any>)) {
      if (element.getClientRects().length === 0) continue;
      const text = Array.from(element.childNodes as ArrayLike<any>)
        .filter((node) => node.nodeType === 3)
        .map((node) => String(node.textContent).trim())
        .join("");
      if (text === "") continue;
      const fg = luminance(rgb(window.getComputedStyle(element).color));
      const bg = luminance(backgroundOf(element));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      if (ratio < 4.5) low.push(`${element.tagName} "${text.slice(0, 30)}": ${ratio.toFixed(2)}`);
    }
    return low;
  });
}

// In order, on one stack: the cancel runs while no worker does; the worker starts in the
// 100,000-row test and stays; the phone lists what the others sent.
describe("the web page", () => {
  test("is served with its types, a strict same-origin policy and caching that fits each file", async () => {
    const page = await fetch(`${api.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(page.headers.get("content-security-policy"), PAGE_CSP);
    assert.match(
      PAGE_CSP,
      /script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'/,
    );
    assert.match(PAGE_CSP, /^default-src 'none';.*frame-ancestors 'none'$/);
    assert.equal(page.headers.get("cache-control"), "no-cache");
    const html = await page.text();
    const script = /<script type="module" src="(\/assets\/app-[\w-]+\.js)"><\/script>/.exec(html);
    const style = /<link rel="stylesheet" href="(\/assets\/app-[\w-]+\.css)">/.exec(html);
    assert.ok(script?.[1] && style?.[1], "the page names its hashed script and stylesheet");
    assert.doesNotMatch(html, /<style|style=|<script>/, "nothing inline");

    // As a browser revalidates; fetch would add `cache-control: no-cache`, which forbids a 304.
    const again = await fetch(`${api.url}/`, {
      headers: { "if-none-match": page.headers.get("etag") ?? "", "cache-control": "max-age=0" },
    });
    assert.equal(again.status, 304, "a page the browser holds is revalidated, not sent again");

    for (const [path, type] of [
      [script[1], "text/javascript; charset=utf-8"],
      [style[1], "text/css; charset=utf-8"],
    ] as const) {
      const asset = await fetch(`${api.url}${path}`);
      assert.equal(asset.status, 200, path);
      assert.equal(asset.headers.get("content-type"), type);
      assert.equal(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assert.equal(asset.headers.get("x-content-type-options"), "nosniff");
      assert.ok((await asset.text()).length > 0);
    }
    for (const path of ["/assets/app-0000.js", "/assets/..%2Findex.html", "/assets/index.html"]) {
      const missing = await fetch(`${api.url}${path}`);
      assert.equal(missing.status, 404, path);
      assert.equal(missing.headers.get("cache-control"), "no-store", path);
      assert.equal(((await missing.json()) as any).error.code, "NotFound", path);
    }
    // The api's own answers keep the strictest policy.
    const list = await fetch(`${api.url}/uploads`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(
      list.headers.get("content-security-policy"),
      "default-src 'none'; frame-ancestors 'none'",
    );
  });

  test("cancels an upload in progress", async () => {
    const path = join(files, "to-cancel.csv");
    await writeFile(path, csv(Array.from({ length: 5_000 }, (_, i) => `${i},n${i},c${i}`)));
    const { page, context, problems } = await openPage();
    await useKey(page);
    const id = await upload(page, path);
    // No worker runs yet: the upload waits, queued, with nothing landed.
    await statusIs(page, "queued");
    const cancel = page.getByRole("button", { name: "Cancel upload" });
    await cancel.click();
    await statusIs(page, "cancelled");
    await cancel.waitFor({ state: "hidden" });
    await page
      .locator("#uploads-table tr", { hasText: "to-cancel.csv" })
      .getByText("cancelled")
      .waitFor();
    assert.deepEqual(await uploadRow(id), { status: "cancelled", rows_landed: 0 });
    await screenshot(page, "cancelled");
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("sends a file of 100,000 rows and shows its bytes, then its batches landing live, to completed", async () => {
    const path = join(files, "people.csv");
    await writeFile(
      path,
      csv(Array.from({ length: ROWS }, (_, i) => `${i + 1},person ${i + 1},city ${i % 97}`)),
    );
    const { page, context, urls, problems } = await openPage();
    const authorized: string[] = [];
    page.on("request", (request) => {
      if (new URL(request.url()).pathname.startsWith("/uploads")) {
        authorized.push(request.headers().authorization ?? "none");
      }
    });
    await useKey(page);
    const id = await upload(page, path);
    await statusIs(page, "queued");
    const sent = await meter(page, "File sent");
    assert.ok(
      sent.value === sent.max && sent.max > 1,
      `the bytes bar is full: ${JSON.stringify(sent)}`,
    );
    await page.getByText(/\(100%\)$/).waitFor();

    // Every text the landing figures take, as the page shows them.
    await page.evaluate(() => {
      const seen: string[] = [];
      window.seen = seen;
      for (const id of ["rows-text", "time-left"]) {
        const target = document.getElementById(id);
        new window.MutationObserver((records: any[]) => {
          for (const record of records) {
            for (const node of record.addedNodes) seen.push(`${id}: ${node.textContent}`);
          }
        }).observe(target, { childList: true });
      }
    });

    // The page has the stream open before a batch can land.
    const worker = await startWorkerInProcess(env);
    stopWorker = worker.stop;

    await statusIs(page, "completed");
    await page.getByText("100,000 of 100,000 rows landed", { exact: true }).waitFor();
    await page.getByText("Batches: 100 of 100 landed").waitFor();
    await page.getByText("Done.").waitFor();
    const landed = await meter(page, "Rows landed");
    assert.deepEqual(landed, { value: 100, max: 100 });
    assert.equal(
      await page.locator('[aria-live="polite"]').textContent(),
      "Upload completed: 100,000 of 100,000 rows landed.",
      "a screen reader hears the end",
    );

    const seen = (await page.evaluate(() => window.seen)) as string[];
    const partial = seen.filter((s) => /^rows-text: [\d,]+ of 100,000 rows landed$/.test(s));
    assert.ok(
      partial.some((s) => !s.includes("100,000 of") && !s.includes(": 0 of")),
      `rows shown landing on the way: ${partial.slice(0, 5).join(" | ")}`,
    );
    assert.ok(
      seen.some((s) => /^time-left: About \d+.* left$/.test(s)),
      `a time left shown on the way: ${seen.filter((s) => s.startsWith("time-left")).slice(0, 5)}`,
    );

    const { rows } = await env.sql.query(
      "select count(*)::int as n from upload_rows where upload_id = $1",
      [id],
    );
    assert.equal(rows[0].n, ROWS, "every row landed in PostgreSQL");
    assert.deepEqual(await uploadRow(id), { status: "completed", rows_landed: ROWS });

    const listed = page.locator("#uploads-table tbody tr");
    await listed.first().filter({ hasText: "people.csv" }).getByText("completed").waitFor();
    await listed.filter({ hasText: "to-cancel.csv" }).getByText("cancelled").waitFor();

    assert.equal(await page.evaluate(() => sessionStorage.getItem("sluice.apiKey")), KEY);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.ok(
      urls.every((url) => !url.includes(KEY)),
      "the key is in no URL",
    );
    assert.ok(authorized.length > 0);
    assert.ok(
      authorized.every((a) => a === `Bearer ${KEY}`),
      "every api call sends the key",
    );
    await screenshot(page, "completed");
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("lists a file's rejected rows and downloads them as CSV", async () => {
    const path = join(files, "with-bad-rows.csv");
    await writeFile(
      path,
      csv([
        "1,Ada,London",
        "2,Grace",
        "3,Alan,Wilmslow",
        "4,Edsger,Nuenen,extra",
        "5,Barbara,Boston",
        '6,"Hopper, Grace","New York"',
        "7",
      ]),
    );
    const { page, context, problems } = await openPage();
    await useKey(page);
    const id = await upload(page, path);
    await statusIs(page, "completed");
    await page.getByText("4 of 7 rows landed, 3 rows rejected", { exact: true }).waitFor();
    await page.getByText("3 rows were rejected.").waitFor();
    const cells = await page
      .locator("#errors-table tbody tr")
      .evaluateAll((rows: any[]) =>
        rows.map((row) =>
          Array.from(
            row.querySelectorAll("td") as ArrayLike<any>,
            (td) => td.textContent as string,
          ),
        ),
      );
    assert.deepEqual(
      cells.map((row) => row.slice(0, 3)),
      [
        ["2", "3", "FieldCount"],
        ["4", "5", "FieldCount"],
        ["7", "8", "FieldCount"],
      ],
    );

    const downloading = page.waitForEvent("download");
    await page.getByRole("button", { name: "Download rejected rows (CSV)" }).click();
    const download = await downloading;
    assert.equal(download.suggestedFilename(), `${id}-errors.csv`);
    const saved = join(artifacts, download.suggestedFilename());
    await download.saveAs(saved);
    const lines = (await readFile(saved, "utf8")).trim().split("\n");
    assert.equal(lines[0], "row,line,code,message");
    assert.deepEqual(
      lines.slice(1).map((line) => line.split(",").slice(0, 3).join(",")),
      ["2,3,FieldCount", "4,5,FieldCount", "7,8,FieldCount"],
    );
    assert.deepEqual(await uploadRow(id), { status: "completed", rows_landed: 4 });
    await screenshot(page, "rejected-rows");
    assert.deepEqual(await lowContrast(page), []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("works at a phone's width and from the keyboard", async () => {
    const { page, context, problems } = await openPage({ width: 375, height: 740 });
    // From the top of the page, the key field is the first stop, and Enter sends the form.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "api-key");
    await page.keyboard.type("not-a-key");
    await page.keyboard.press("Enter");
    await page.getByRole("alert").filter({ hasText: "(Unauthorized)" }).waitFor();
    await page.keyboard.press("Control+A");
    await page.keyboard.type(KEY);
    await page.keyboard.press("Enter");
    await page.getByText("Key in use.").waitFor();
    await page
      .getByRole("alert")
      .filter({ hasText: "(Unauthorized)" })
      .waitFor({ state: "hidden" });
    await page.locator("#uploads-table tbody tr", { hasText: "people.csv" }).waitFor();
    const widths = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
    }));
    assert.ok(widths.page <= widths.viewport, `no sideways scrolling: ${JSON.stringify(widths)}`);
    for (const name of ["Use key", "Upload", "Refresh", "Show people.csv"]) {
      const box = await page.getByRole("button", { name, exact: true }).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 375, `${name} fits the screen`);
    }
    // Each control has a name a screen reader can say.
    const unnamed = await page.evaluate(() =>
      Array.from(document.querySelectorAll("input, button") as ArrayLike<any>)
        .filter((el) => el.offsetParent !== null)
        .filter(
          (el) =>
            el.labels?.length === 0 && !el.getAttribute("aria-label") && !el.textContent?.trim(),
        )
        .map((el) => el.outerHTML),
    );
    assert.deepEqual(unnamed, []);
    await screenshot(page, "phone");
    assert.deepEqual(await lowContrast(page), []);
    assert.deepEqual(problems, [
      "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
    ]);
    await context.close();
  });
});
