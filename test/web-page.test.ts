// The web page at `/`, in a real browser: Debian's chromium driven by playwright-core, against
// the api and a worker on the real services. A person enters a key, sends a file of 100,000
// rows and watches it land, reads the rows a bad file dropped on the page had rejected, cancels
// an upload, and does it on a phone's width too; chooses a target and sees its rows land typed,
// or the reason a file does not fit it. Its screenshots are the run's artefacts: in
// test-results/web-page/, which git ignores, emptied when the run starts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Locator,
  type Page,
} from "playwright-core";
import { buildWeb } from "../scripts/build-web.ts";
import { PAGE_CSP } from "../src/api/http/web.routes.ts";
import {
  type InProcess,
  ROOT,
  startInProcess,
  startWorkerInProcess,
  type TestEnv,
  testEnv,
} from "./support/stack.ts";
import { upsertById } from "./support/target-definitions.ts";

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
  // One place, known before the run, for CI to keep; a run replaces the last one's.
  artifacts = join(ROOT, "test-results", "web-page");
  await rm(artifacts, { recursive: true, force: true });
  await mkdir(artifacts, { recursive: true });
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

/** Drops the file on the page's drop zone, as a person drags one there from their files. */
async function drop(page: Page, path: string) {
  const file = { name: basename(path), text: await readFile(path, "utf8") };
  const dataTransfer = await page.evaluateHandle(({ name, text }) => {
    const transfer = new window.DataTransfer();
    transfer.items.add(new window.File([text], name, { type: "text/csv" }));
    return transfer;
  }, file);
  await page.dispatchEvent("#drop-zone", "drop", { dataTransfer });
}

async function upload(
  page: Page,
  path: string,
  how: "choose" | "drop" = "choose",
): Promise<string> {
  if (how === "drop") await drop(page, path);
  else await page.getByLabel("Choose a CSV file").setInputFiles(path);
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  return currentId(page);
}

/** The id of the upload the page follows, once it has one. */
async function currentId(page: Page): Promise<string> {
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

/** The page's table of rejected rows, each as the text of its cells. */
function rejectedRows(page: Page): Promise<string[][]> {
  return page
    .locator("#errors-table tbody tr")
    .evaluateAll((rows: any[]) =>
      rows.map((row) =>
        Array.from(row.querySelectorAll("td") as ArrayLike<any>, (td) => td.textContent as string),
      ),
    );
}

const csv = (rows: string[]) => `id,name,city\n${rows.join("\n")}\n`;

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * What axe-core, run in the page as it stands, finds against WCAG 2.1 A and AA: each rule
 * broken, with the elements that break it.
 */
async function accessibilityViolations(page: Page): Promise<string[]> {
  // A script given as text is run by the browser's debugger protocol, which the page's
  // Content-Security-Policy does not govern; the page itself stays under it.
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const axe = (window as any).axe;
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    });
    return result.violations.map(
      (v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(" ")).join(", ")}`,
    );
  });
}

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

  test("cancels an upload in progress, from its panel with the keyboard and from the list", async () => {
    const rows = csv(Array.from({ length: 5_000 }, (_, i) => `${i},n${i},c${i}`));
    const [first, second] = [join(files, "to-cancel.csv"), join(files, "to-cancel-too.csv")];
    for (const path of [first, second]) await writeFile(path, rows);
    const { page, context, problems } = await openPage();
    await useKey(page);
    // Chosen, sent and cancelled with keys alone: each control takes the focus and its key.
    const press = async (control: Locator, key: string) => {
      await control.focus();
      await page.keyboard.press(key);
    };
    const chooser = page.waitForEvent("filechooser");
    await press(page.getByLabel("Choose a CSV file"), "Space");
    await (await chooser).setFiles(first);
    await press(page.getByRole("button", { name: "Upload", exact: true }), "Enter");
    const firstId = await currentId(page);
    // No worker runs yet: the upload waits, queued, with nothing landed.
    await statusIs(page, "queued");
    const cancel = page.getByRole("button", { name: "Cancel upload" });
    await press(cancel, "Enter");
    await statusIs(page, "cancelled");
    await cancel.waitFor({ state: "hidden" });
    const listed = (name: string) => page.locator("#uploads-table tbody tr", { hasText: name });
    await listed("to-cancel.csv").getByText("cancelled").waitFor();
    assert.deepEqual(await uploadRow(firstId), { status: "cancelled", rows_landed: 0 });
    await screenshot(page, "cancelled");

    // The second, from its row in the list of the tenant's uploads, where it comes first.
    const secondId = await upload(page, second);
    await statusIs(page, "queued");
    await listed("to-cancel-too.csv").getByText("queued").waitFor();
    await page.getByRole("button", { name: "Cancel to-cancel-too.csv" }).click();
    await listed("to-cancel-too.csv").getByText("cancelled").waitFor();
    assert.deepEqual(await uploadRow(secondId), { status: "cancelled", rows_landed: 0 });
    const names = await page
      .locator("#uploads-table tbody tr td:first-child")
      .evaluateAll((cells: any[]) => cells.map((cell) => String(cell.textContent)));
    assert.deepEqual(
      names.map((name) => name.match(/to-cancel(-too)?\.csv/)?.[0]),
      ["to-cancel-too.csv", "to-cancel.csv"],
      "newest first",
    );
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

  test("lists the rejected rows of a file dropped on the page and downloads them as CSV", async () => {
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
    const id = await upload(page, path, "drop");
    assert.equal(await page.locator("#current-heading").textContent(), "with-bad-rows.csv");
    await statusIs(page, "completed");
    await page.getByText("4 of 7 rows landed, 3 rows rejected", { exact: true }).waitFor();
    await page.getByText("3 rows were rejected.").waitFor();
    const cells = await rejectedRows(page);
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
    assert.deepEqual(await accessibilityViolations(page), []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("lists the tenant's targets, lands a file's rows typed in the one chosen, and says why a file does not fit", async () => {
    const define = (name: string, definition: object) =>
      fetch(`${api.url}/targets/${name}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify(definition),
      });
    const people = await define(
      "people",
      upsertById("people", [
        { name: "name", type: "text" },
        { name: "born", type: "date", format: "DD/MM/YYYY" },
        { name: "score", type: "numeric", default: "0" },
        { name: "active", type: "boolean", required: true },
      ]),
    );
    assert.equal(people.status, 201, await people.text());
    const doomed = await define("doomed", {
      table: "doomed",
      columns: [{ name: "id", type: "bigint" }],
    });
    assert.equal(doomed.status, 201, await doomed.text());

    const { page, context, problems } = await openPage();
    await useKey(page);
    const select = page.getByRole("combobox", { name: "Where the rows land" });
    await select
      .locator("option", { hasText: /^people: table tenant_acme\.people, upsert$/ })
      .waitFor({
        state: "attached",
      });
    assert.equal(await select.inputValue(), "", "JSON rows unless a target is chosen");
    assert.equal(await select.locator("option:checked").textContent(), "No target: JSON rows");
    assert.deepEqual(
      await select.locator("option").evaluateAll((options: any[]) => options.map((o) => o.value)),
      ["", "doomed", "people"],
    );
    // From the keyboard: the file's field, then the choice of target, which arrows change.
    await page.getByLabel("Choose a CSV file").focus();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "target");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    assert.equal(await select.inputValue(), "people");

    const typed = join(files, "typed.csv");
    await writeFile(
      typed,
      "id,name,born,score,active\n1,Ada,10/12/1815,3.5,yes\n2,Grace,09/12/1906,,no\n3,Alan,31/02/1912,1,true\n",
    );
    const id = await upload(page, typed);
    await statusIs(page, "completed");
    await page.getByText("Into target people (version 1)", { exact: true }).waitFor();
    await page.getByText("2 of 3 rows landed, 1 rows rejected", { exact: true }).waitFor();
    // The rejected rows are fetched once the upload has ended: their table follows.
    await page.getByText("1 row was rejected.").waitFor();
    const rejected = await rejectedRows(page);
    assert.deepEqual(
      rejected.map((row) => row.slice(0, 3)),
      [["3", "4", "InvalidValue"]],
    );
    assert.match(rejected[0]?.[3] ?? "", /born/);
    const { rows: landed } = await env.sql.query(
      "select id, name, born::text as born, score::text as score, active from tenant_acme.people order by id",
    );
    assert.deepEqual(landed, [
      { id: 1, name: "Ada", born: "1815-12-10", score: "3.5", active: true },
      { id: 2, name: "Grace", born: "1906-12-09", score: "0", active: false },
    ]);
    const { rows: json } = await env.sql.query(
      "select count(*)::int as n from upload_rows where upload_id = $1",
      [id],
    );
    assert.equal(json[0].n, 0, "no JSON rows for an upload into a target");

    // The list of uploads says where each one's rows go: a target and its version, or JSON rows.
    const form = new FormData();
    form.append("file", new Blob(["id,name\n1,Ada\n"], { type: "text/csv" }), "plain.csv");
    const plain = await fetch(`${api.url}/uploads`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}` },
      body: form,
    });
    assert.equal(plain.status, 202, await plain.text());
    await page.getByRole("button", { name: "Refresh", exact: true }).click();
    const list = page.locator("#uploads-table");
    const header = await list
      .locator("thead th")
      .evaluateAll((cells: any[]) => cells.map((c) => c.textContent as string));
    const into = header.indexOf("Rows go to");
    assert.ok(into >= 0, `a column says where the rows go: ${JSON.stringify(header)}`);
    const goesTo = (file: string) =>
      list.locator("tbody tr", { hasText: file }).locator("td").nth(into).textContent();
    await list.locator("tbody tr", { hasText: "plain.csv" }).waitFor();
    assert.equal(await goesTo("typed.csv"), "people (version 1)");
    assert.equal(await goesTo("plain.csv"), "JSON rows");
    await screenshot(page, "target-completed");

    // A file lacking a required column is refused before it is stored, and the page says why.
    const lacking = join(files, "lacking.csv");
    await writeFile(lacking, "id,name\n4,Edsger\n");
    await page.getByLabel("Choose a CSV file").setInputFiles(lacking);
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await statusIs(page, "not sent");
    const reason = page.locator("#current-error");
    await reason.filter({ hasText: "(MissingColumns)" }).waitFor();
    assert.match(
      (await reason.textContent()) ?? "",
      /lacks the column "active" that target people requires/,
    );
    assert.equal(await reason.getAttribute("role"), "alert");
    await screenshot(page, "target-missing-column");

    // A target that goes after the list was read: the upload is refused, and the list follows.
    await select.selectOption("doomed");
    const gone = await fetch(`${api.url}/targets/doomed`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(gone.status, 204);
    await page.getByLabel("Choose a CSV file").setInputFiles(typed);
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await reason.filter({ hasText: "(UnknownTarget)" }).waitFor();
    await select.locator("option", { hasText: /^doomed/ }).waitFor({ state: "detached" });
    assert.equal(await select.inputValue(), "", "back to JSON rows, not to another target");
    assert.deepEqual(await uploadRow(id), { status: "completed", rows_landed: 2 });
    assert.deepEqual(await lowContrast(page), []);
    assert.deepEqual(await accessibilityViolations(page), []);
    assert.deepEqual(problems, [
      "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)",
      "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)",
    ]);
    await context.close();
  });

  test("works at a phone's width and from the keyboard", async () => {
    const { page, context, problems } = await openPage({ width: 375, height: 740 });
    // From the top of the page, the key field is the first stop, and Enter sends the form.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "api-key");
    await page.keyboard.type("not-a-key");
    await page.keyboard.press("Enter");
    // Both the uploads' list and the targets' say so.
    const refused = page.getByRole("alert").filter({ hasText: "(Unauthorized)" });
    await refused.nth(1).waitFor();
    await page.keyboard.press("Control+A");
    await page.keyboard.type(KEY);
    await page.keyboard.press("Enter");
    await page.getByText("Key in use.").waitFor();
    await refused.first().waitFor({ state: "hidden" });
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
    // Where the rows go moves under the file's name, which the narrow table has room for.
    const typedRow = page.locator("#uploads-table tbody tr", { hasText: "typed.csv" });
    assert.ok(await typedRow.getByText("into people (version 1)", { exact: true }).isVisible());
    assert.equal(
      await page.getByRole("columnheader", { name: "Rows go to" }).isVisible(),
      false,
      "the column gives its room to the others",
    );
    const select = page.getByRole("combobox", { name: "Where the rows land" });
    await select.locator("option", { hasText: /^people:/ }).waitFor({ state: "attached" });
    const box = await select.boundingBox();
    assert.ok(
      box && box.x >= 0 && box.x + box.width <= 375,
      "the choice of target fits the screen",
    );
    // Each control has a name a screen reader can say.
    const unnamed = await page.evaluate(() =>
      Array.from(document.querySelectorAll("input, button, select") as ArrayLike<any>)
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
    assert.deepEqual(await accessibilityViolations(page), []);
    // The bad key's two calls: the uploads, and the targets.
    assert.deepEqual(problems, [
      "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
      "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
    ]);
    await context.close();
  });
});
