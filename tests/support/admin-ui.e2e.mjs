// The admin interface end to end, in Debian's headless Chromium driven by
// playwright-core, against a real edgefn server (tests/admin_ui.rs starts
// it): sign in, deploy a function, run it from the test console, find its
// record in the logs with its console output, filter the logs, follow the
// live tail, change the policy and see the denied call recorded, call as a
// user, build a metadata policy, set and rotate a secret, deploy a second
// version and roll back, and the groups, keys and database pages. Fails on
// the first step that does not happen, and on any script error or CSP
// violation in the page.
//
// Environment: EDGEFN_URL, EDGEFN_ADMIN_KEY, SCREENSHOT_DIR (where the
// screenshots go); optional CHROMIUM (default /usr/bin/chromium) and
// EDGEFN_ADMIN_UI_DIR (serve the interface's files from this folder instead
// of the server's embedded copy: try an edit without rebuilding the server).

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { isDeepStrictEqual } from "node:util";

const base = required("EDGEFN_URL");
const adminKey = required("EDGEFN_ADMIN_KEY");
const shots = required("SCREENSHOT_DIR");
mkdirSync(shots, { recursive: true });

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`admin-ui e2e: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

/** Ends the run at this step; the catch below reports it with a screenshot. */
function fail(message) {
  throw new Error(message);
}

const HELLO = `export default {
  async fetch(request, env, ctx) {
    const body = request.method === "POST" ? await request.json() : {};
    console.log("greeting", body.name ?? "nobody");
    console.warn("caller is", ctx.caller?.email ?? "anonymous");
    return Response.json({ hello: body.name ?? "world", caller: ctx.caller?.email ?? null }, { status: 201 });
  }
};
`;

const problems = [];
/** Rows of the records table (charts keep their numbers in hidden tables too). */
const recordRows = () => page.getByRole("region", { name: "Execution records, newest first" }).locator("tbody tr");
const started = Date.now();
let stepName = "starting";
const step = (name) => {
  stepName = name;
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${name}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "light", reducedMotion: "reduce" });
context.setDefaultTimeout(10_000);
const page = await context.newPage();
page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
page.on("console", (message) => {
  // A failed fetch the test provoked (401/403 from a function) is logged
  // by Chromium as a console error; script errors and CSP reports are what matter.
  if (message.type() === "error" && !/Failed to load resource/.test(message.text())) problems.push(`console error: ${message.text()}`);
});
if (process.env.EDGEFN_ADMIN_UI_DIR) {
  const dir = process.env.EDGEFN_ADMIN_UI_DIR;
  const types = { ".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml" };
  await page.route(/\/admin\/(assets\/.*)?$/, async (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\/admin\/(assets\/)?/, "") || "index.html";
    // The server's own headers (its CSP above all), with the file from disk.
    const response = await route.fetch();
    const headers = { ...response.headers(), "content-type": types[extname(path)] };
    delete headers["content-length"];
    delete headers.etag;
    await route.fulfill({ status: 200, body: readFileSync(join(dir, path)), headers });
  });
}

async function shot(name, { fullPage = true } = {}) {
  await page.waitForLoadState("networkidle");
  // The page as a person arriving at it sees it: no leftover announcements, no hover.
  await page.evaluate(() => {
    document.querySelectorAll(".toast").forEach((toast) => toast.remove());
    document.activeElement?.blur();
    window.scrollTo(0, 0);
  });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage });
}

/** Waits until the batch writer has stored `count` records matching `query` (admin API, from here). */
async function waitForRecords(query, count) {
  for (let i = 0; i < 100; i += 1) {
    const response = await fetch(`${base}/admin/v1/executions?${query}&limit=1000`, { headers: { Authorization: `Bearer ${adminKey}` } });
    if ((await response.json()).executions.length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  fail(`fewer than ${count} records match ${query} after 5 s`);
}

/** The toast (a live region) that says an action worked. */
async function expectToast(text) {
  await page.locator(".toast", { hasText: text }).first().waitFor();
}

async function expectText(locator, text, what) {
  await locator.filter({ hasText: text }).first().waitFor().catch(() => fail(`${what} never showed ${JSON.stringify(text)}`));
}

try {
  step("sign-in refuses a wrong key, with the reason next to the field");
  await page.goto(`${base}/admin/`);
  const keyField = page.getByLabel("Admin key");
  await keyField.fill("efk_not_a_real_key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expectText(page.locator(".field-error"), "not valid", "the sign-in form");
  if (page.url().includes("efk_")) fail("the admin key appeared in the URL");
  await shot("signin");

  step("sign in with the admin key");
  await keyField.fill(adminKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Functions", level: 1 }).waitFor();
  await expectText(page.locator(".state"), "No functions yet", "the empty function list");
  if (page.url().includes(adminKey)) fail("the admin key appeared in the URL");
  const stored = await page.evaluate(() => ({ session: Object.keys(sessionStorage), local: Object.keys(localStorage) }));
  if (stored.local.length || !stored.session.length) fail(`the key should be in sessionStorage only: ${JSON.stringify(stored)}`);

  step("deploy: a compile error is shown at its line");
  await page.getByRole("link", { name: "Deploy a function" }).first().click();
  await page.getByLabel("Name").fill("hello");
  await page.getByLabel("Who may call it").selectOption("public");
  await page.getByLabel("Source", { exact: true }).fill("export default {\n  fetch() {\n    return new Response(;\n  }\n};\n");
  await page.getByRole("button", { name: "Deploy", exact: true }).click();
  await expectText(page.locator(".field-error"), "Line 3", "the source field");
  await page.locator(".compile-error .line.marked").waitFor();

  step("deploy hello v1");
  await page.getByLabel("Source", { exact: true }).fill(HELLO);
  await page.getByRole("button", { name: "Deploy", exact: true }).click();
  await expectToast("Deployed hello v1");
  await page.getByRole("heading", { name: "hello", level: 1 }).waitFor();

  step("run it from the test console");
  await page.getByRole("link", { name: "Test", exact: true }).click();
  await page.getByRole("heading", { name: "Test console" }).waitFor();
  await page.getByLabel("Method").selectOption("POST");
  await page.getByLabel("Path and query").fill("/greet?via=console");
  await page.getByLabel("Headers").fill("content-type: application/json");
  await page.getByLabel("Body").fill('{"name": "Ada"}');
  await page.getByRole("button", { name: "Send request" }).click();
  await expectText(page.locator(".response-line"), "201", "the response status");
  await expectText(page.locator("pre.output"), '"hello": "Ada"', "the response body");
  await expectText(page.locator(".console-line"), "greeting Ada", "the record's console output");
  const fuel = await page.locator(".pairs dt", { hasText: "Fuel" }).locator("xpath=following-sibling::dd[1]").textContent();
  if (!/^[\d,.]+( M)?$/.test(fuel)) fail(`the record's fuel is ${JSON.stringify(fuel)}, not a number`);
  await shot("console");

  step("the record is in the logs, with its console output");
  await page.getByRole("link", { name: "Logs", exact: true }).first().click();
  await page.getByRole("heading", { name: "Logs", level: 1 }).waitFor();
  const firstRow = recordRows().filter({ hasText: "POST /functions/v1/hello/greet" }).first();
  await firstRow.waitFor();
  await firstRow.getByRole("link").first().click();
  await page.getByRole("heading", { name: "Execution record" }).waitFor();
  await expectText(page.locator(".console-line"), "greeting Ada", "the record page");
  await expectText(page.locator(".console-line.warn"), "caller is anonymous", "the record page");
  await shot("record");

  step("a second function fails, so there is something to filter out");
  await page.evaluate(async ({ key }) => {
    const source = 'export default { fetch() { console.log("about to fail"); throw new Error("card declined"); } };';
    const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
    const r = await fetch("/admin/v1/functions/charge/versions", { method: "POST", headers, body: JSON.stringify({ source, policy: { type: "public" } }) });
    if (r.status !== 201) throw new Error(`deploying charge: ${r.status}`);
    for (let i = 0; i < 3; i += 1) await fetch("/functions/v1/charge", { method: "POST" });
    for (let i = 0; i < 4; i += 1) await fetch("/functions/v1/hello");
  }, { key: adminKey });

  await waitForRecords("function=charge", 3);
  await waitForRecords("function=hello&q=nobody", 4);

  step("filter the logs: function, outcome, text");
  await page.goto(`${base}/admin/#/logs`);
  await page.getByRole("heading", { name: "Logs", level: 1 }).waitFor();
  await page.getByLabel("Outcome").selectOption("error");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.waitForURL(/outcome=error/);
  await recordRows().first().waitFor();
  const errorRows = await recordRows().allTextContents();
  if (errorRows.length !== 3 || !errorRows.every((row) => row.includes("charge"))) fail(`outcome=error should list the 3 charge calls, got ${JSON.stringify(errorRows)}`);
  await page.goto(`${base}/admin/#/logs?function=hello&q=nobody`);
  await recordRows().first().waitFor();
  const helloRows = await recordRows().count();
  if (helloRows !== 4) fail(`function=hello&q=nobody should list the 4 GET calls, got ${helloRows}`);
  await page.goto(`${base}/admin/#/logs?function=hello&q=no-such-text`);
  await expectText(page.locator(".state"), "No records match", "a filter that matches nothing");

  step("live tail shows a new call");
  await page.goto(`${base}/admin/#/logs?function=hello`);
  await page.locator("svg.chart").first().waitFor();
  await page.getByRole("button", { name: "Live tail" }).click();
  await expectText(page.locator(".tail-status"), "Following", "the tail status");
  await page.evaluate(() => fetch("/functions/v1/hello/tailed", { method: "DELETE" }));
  await recordRows().and(page.locator(".new")).filter({ hasText: "DELETE /functions/v1/hello/tailed" }).waitFor();
  await page.getByRole("button", { name: "Stop tail" }).click();
  await shot("logs");

  step("create a user in the group the new policy will require");
  await page.getByRole("link", { name: "Users" }).click();
  await expectText(page.locator(".state"), "No users yet", "the empty user list");
  await page.getByText("Create a user").click();
  await page.getByLabel("Email", { exact: true }).fill("ada@example.com");
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByLabel("Groups", { exact: true }).fill("admin");
  await page.getByLabel("Metadata (JSON)").fill('{"department": "engineering"}');
  await page.getByRole("button", { name: "Create user" }).click();
  await expectToast("ada@example.com can now sign in");
  await page.getByRole("heading", { name: "ada@example.com" }).waitFor();

  step("change the policy to members of admin; a bad group name is refused next to the editor");
  await page.goto(`${base}/admin/#/functions/hello/access`);
  await page.getByText("Members of groups").click();
  await page.getByLabel("Groups", { exact: true }).fill("Admin");
  await page.getByRole("button", { name: "Save access" }).click();
  await expectText(page.locator(".policy-editor .field-error"), "invalid group name", "the policy editor");
  await page.getByLabel("Groups", { exact: true }).fill("");
  await page.getByRole("button", { name: "Add group admin" }).click();
  await page.getByRole("button", { name: "Save access" }).click();
  await expectToast("Access to hello saved");
  await shot("access");

  step("an anonymous call is now denied, and recorded so");
  await page.goto(`${base}/admin/#/console?function=hello`);
  await page.getByRole("button", { name: "Send request" }).click();
  await expectText(page.locator(".response-line"), "401", "the response status");
  await expectText(page.locator(".record-summary .badge"), "denied", "the record's outcome");

  step("the same call as ada, a member of admin, runs");
  await page.getByLabel("A user", { exact: true }).check();
  await page.getByLabel("User", { exact: true }).selectOption({ label: "ada@example.com (admin)" });
  await page.getByRole("button", { name: "Send request" }).click();
  await expectText(page.locator(".response-line"), "201", "the response status");
  await expectText(page.locator(".pairs dd"), "via admin-key:", "the record's caller");
  await expectText(page.locator(".console-line.warn"), "caller is ada@example.com", "the record's console output");

  step("the denied call is in the logs under outcome denied");
  await page.goto(`${base}/admin/#/logs?outcome=denied`);
  await recordRows().first().waitFor();
  const denied = await recordRows().allTextContents();
  if (denied.length !== 1 || !/hello/.test(denied[0]) || !/401/.test(denied[0])) fail(`outcome=denied should list the one refused call, got ${JSON.stringify(denied)}`);

  step("a metadata policy built in the editor: department equals engineering, or level above 2");
  await page.goto(`${base}/admin/#/functions/hello/access`);
  await page.getByText("Users whose metadata matches").click();
  await page.getByLabel("Combine the conditions below with").selectOption("any");
  await page.getByLabel("Metadata key").fill("department");
  await page.getByLabel("Value", { exact: true }).fill("engineering");
  await page.getByRole("button", { name: "Add condition" }).click();
  await page.getByLabel("Metadata key").last().fill("level");
  await page.getByLabel("Operator").last().selectOption("gt");
  await page.getByLabel("Value", { exact: true }).last().fill("two");
  await page.getByRole("button", { name: "Save access" }).click();
  await expectText(page.locator(".condition .field-error"), "not a number", "the condition");
  await page.getByLabel("Value", { exact: true }).last().fill("2");
  await page.getByRole("button", { name: "Save access" }).click();
  await expectToast("Access to hello saved");
  const saved = await page.evaluate(async ({ key }) => (await (await fetch("/admin/v1/functions/hello/access", { headers: { Authorization: `Bearer ${key}` } })).json()).policy, { key: adminKey });
  const expected = { type: "metadata", any: [{ key: "department", equals: "engineering" }, { key: "level", gt: 2 }] };
  if (!isDeepStrictEqual(saved, expected)) fail(`the saved policy is ${JSON.stringify(saved)}`);
  await page.goto(`${base}/admin/#/console?function=hello`);
  await page.getByLabel("A user", { exact: true }).check();
  await page.getByRole("button", { name: "Send request" }).click();
  await expectText(page.locator(".response-line"), "201", "the response status (ada's department is engineering)");

  step("set a secret, rotate it; its value is never shown");
  await page.getByRole("link", { name: "Secrets" }).click();
  await expectText(page.locator(".state"), "No secrets yet", "the empty secret list");
  await page.getByLabel("Name").fill("GREETING_KEY");
  await page.getByLabel("Value").fill("s3cret-value-1");
  await page.getByRole("button", { name: "Set secret" }).click();
  await expectToast("GREETING_KEY is set (version 1)");
  const row = page.locator("tr[data-secret=GREETING_KEY]");
  await row.waitFor();
  await row.getByRole("button", { name: "Rotate" }).click();
  await page.getByLabel("New value of GREETING_KEY").fill("s3cret-value-2");
  await page.getByRole("button", { name: "Rotate", exact: true }).last().click();
  await expectToast("GREETING_KEY is set (version 2)");
  await expectText(page.locator("tr[data-secret=GREETING_KEY] td.num"), "2", "the secret's version");
  if ((await page.content()).includes("s3cret-value")) fail("a secret value is in the page");
  await shot("secrets");

  step("grant it to hello from the function's Secrets tab");
  await page.goto(`${base}/admin/#/functions/hello/secrets`);
  await page.getByLabel("GREETING_KEY").check();
  await page.getByRole("button", { name: "Save grants" }).click();
  await expectToast("Grants of hello saved");

  step("deploy v2 from the Deploy tab with its own deadline, then roll back to v1");
  await page.goto(`${base}/admin/#/functions/hello/deploy`);
  const source = page.getByLabel("Source", { exact: true });
  if ((await source.inputValue()) !== HELLO) fail("the deploy form does not start from the active version's source");
  await source.fill(HELLO.replace('"greeting"', '"hi"'));
  await page.getByText("Limits, egress and database role of this version").click();
  await page.getByLabel("Deadline (ms)").fill("5000");
  await page.getByRole("button", { name: "Deploy v2" }).click();
  await expectToast("Deployed hello v2");
  await expectText(page.locator("tbody tr"), "deadline 5000 ms", "the versions table");
  await page.locator("tbody tr").filter({ hasText: "server defaults" }).getByRole("button", { name: "Roll back to this" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Activate v1" }).click();
  await expectToast("hello now runs v1");
  await expectText(page.locator(".url-line"), "v1 active", "the function header");

  step("groups list their members; a new admin key is shown once");
  await page.goto(`${base}/admin/#/groups`);
  await expectText(page.getByRole("region", { name: "Groups" }).locator("tbody tr"), "admin", "the group list");
  await page.goto(`${base}/admin/#/keys`);
  await page.getByLabel("Label").fill("ci deploys");
  await page.getByRole("button", { name: "Create key" }).click();
  const newKey = await page.getByLabel("The new key").inputValue();
  if (!newKey.startsWith("efk_")) fail(`the new key is ${JSON.stringify(newKey)}`);
  await expectText(page.getByRole("region", { name: "Admin keys" }).locator("tbody tr"), "ci deploys", "the key list");

  step("create a table and give it row-level security policies");
  await page.goto(`${base}/admin/#/tables`);
  await expectText(page.locator(".state"), "No tables yet", "the empty table list");
  await page.getByText("Create a table").click();
  await page.getByRole("button", { name: "Create table" }).click();
  await expectToast("Table notes created");
  await page.getByRole("heading", { name: "notes", level: 1 }).waitFor();
  await page.getByRole("button", { name: "Add a policy" }).click();
  await page.getByLabel("Name", { exact: true }).fill("read own");
  await page.getByLabel("using (rows it may see)").fill("owner_id = auth.uid() or 'admin' in auth.groups()");
  await page.getByRole("button", { name: "Save policies" }).click();
  await expectToast("Policies of notes saved");
  await page.getByRole("button", { name: "Add a policy" }).click();
  await page.getByLabel("Name", { exact: true }).last().fill("bad");
  await page.getByLabel("using (rows it may see)").last().fill("no_such_column = 1");
  await page.getByRole("button", { name: "Save policies" }).click();
  await expectText(page.locator(".field-error"), "no_such_column", "the policies form");
  await shot("database");

  step("screenshots of the remaining pages at 1280 px");
  await page.goto(`${base}/admin/#/functions`);
  await page.locator("tbody tr").nth(1).waitFor();
  await shot("functions");
  await page.goto(`${base}/admin/#/functions/hello`);
  await page.locator("svg.chart").first().waitFor();
  await shot("function");
  await page.goto(`${base}/admin/#/functions/hello/versions`);
  await page.locator("pre.code .tok-keyword").first().waitFor();
  await shot("versions");
  await page.goto(`${base}/admin/#/users`);
  await page.locator("tbody tr").first().waitFor();
  await shot("users");

  step("keyboard: the navigation is reachable with Tab and shows focus");
  await page.goto(`${base}/admin/#/functions`);
  await page.locator("tbody tr").first().waitFor();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
  if (!focused) fail("Tab did not move focus to a control");

  step("phone width (390 px)");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/admin/#/functions`);
  await page.locator("tbody tr").first().waitFor();
  await shot("phone-functions", { fullPage: false });
  await page.getByRole("button", { name: "Menu" }).click();
  await page.getByRole("link", { name: "Logs" }).waitFor();
  await shot("phone-menu", { fullPage: false });
  await page.getByRole("link", { name: "Logs" }).click();
  await recordRows().first().waitFor();
  await shot("phone-logs", { fullPage: false });
  await page.goto(`${base}/admin/#/functions/hello`);
  await page.locator("svg.chart").first().waitFor();
  await shot("phone-function");
  await page.goto(`${base}/admin/#/console?function=hello`);
  await page.getByRole("button", { name: "Send request" }).waitFor();
  await shot("phone-console", { fullPage: false });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  if (overflow > 0) fail(`the console page is ${overflow} px wider than a phone screen`);

  step("sign out forgets the key");
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.goto(`${base}/admin/#/functions`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("Admin key").waitFor();
  const left = await page.evaluate(() => Object.keys(sessionStorage).length);
  if (left) fail("the key is still in sessionStorage after signing out");

  if (problems.length) fail("the page reported problems (listed below)");
  step(`done; screenshots in ${shots}`);
} catch (error) {
  await page.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  console.error(`admin-ui e2e failed at "${stepName}": ${error.message}`);
  console.error(`(the page at that moment: ${join(shots, "failure.png")})`);
  if (problems.length) console.error(`page problems:\n  ${problems.join("\n  ")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
