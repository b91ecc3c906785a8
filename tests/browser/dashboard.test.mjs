// The dashboard in a real browser: Debian's chromium, driven by playwright-core, against a live duet-server.
//   node dashboard.test.mjs --server BIN --load BIN --out DIR [--screenshot FILE]
// Exits 0 when every check holds, 1 when one fails, 77 (ctest: skipped) when chromium or playwright-core is
// missing, unless DUET_REQUIRE_BROWSER=1 (scripts/test sets it, having installed both) makes that a failure.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    load: { type: 'string' },
    out: { type: 'string', default: '.' },
    screenshot: { type: 'string' }, // also copy the page under load here (docs/dashboard.png)
  },
});
const chromiumPath = process.env.DUET_CHROMIUM ?? '/usr/bin/chromium';

function skip(why) {
  if (process.env.DUET_REQUIRE_BROWSER === '1') {
    console.error(`FAIL: ${why} (DUET_REQUIRE_BROWSER=1)`);
    process.exit(1);
  }
  console.log(`SKIP: ${why}; scripts/test installs it`);
  process.exit(77);
}
if (!existsSync(chromiumPath)) skip(`no browser at ${chromiumPath}`);
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  skip('playwright-core is not installed in tests/browser (npm ci there)');
}

const failures = [];
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One raw request, so that the target goes out byte for byte as written (no URL normalisation).
function rawGet(port, target) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.end(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    sock.on('data', (d) => (data += d));
    sock.on('end', () => resolve(data));
    sock.on('error', reject);
    sock.setTimeout(5000, () => sock.destroy(new Error('timeout')));
  });
}

async function startServer(port) {
  const proc = spawn(args.server, ['-p', String(port), '-l', 'warn'], { stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; i < 100; ++i) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return proc;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error('duet-server did not start');
}

// SIGTERM drains and stops the server: its exit code, which a sanitizer's report makes non-zero.
async function stopServer(proc) {
  if (proc.exitCode !== null) return proc.exitCode;
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
  proc.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(20000).then(() => 'no exit within 20 s')]);
  if (code === 'no exit within 20 s') proc.kill('SIGKILL');
  return code;
}

function runLoad(port, seconds, connections, target) {
  return new Promise((resolve) => {
    const proc = spawn(
      args.load,
      ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, `http://127.0.0.1:${port}${target}`],
      { stdio: 'ignore' },
    );
    proc.on('exit', resolve);
  });
}

const port = await freePort();
const base = `http://127.0.0.1:${port}/`;
mkdirSync(args.out, { recursive: true });
let server = await startServer(port);
process.on('exit', () => server.kill('SIGKILL')); // whatever happens below, no server outlives the test
let browser = null;
try {
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Root in a container needs --no-sandbox; the rest keep Chromium off a network this test must not use.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  const dialogs = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    d.dismiss();
  });
  // Each CSP violation the page meets, reported by the browser itself.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });

  // A Try-it run's end: done, or a failure that fails the test at once with the page's own message.
  const finished = async (card, timeout) => {
    await page.waitForFunction((c) => document.querySelector(c).dataset.state !== 'running', card, { timeout });
    const state = await page.getAttribute(card, 'data-state');
    if (state !== 'done') throw new Error(`${card}: ${await page.textContent(`${card} .result`)}`);
  };

  // The page and its policy.
  const res = await page.goto(base);
  check(res.status() === 200, `GET / in a browser: ${res.status()}`);
  check((res.headers()['content-type'] ?? '').startsWith('text/html'), 'GET / in a browser is the page');
  check((res.headers()['content-security-policy'] ?? '').includes("script-src 'self'"), 'the page has a CSP');
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
  check(true, 'the event stream is live');
  await page.waitForFunction(() => /^\d+$/.test(document.querySelector('#fact-workers').textContent), null, {
    timeout: 10000,
  });

  // The timeline: one lane per server thread, named as the server names them.
  await page.waitForFunction(() => document.querySelectorAll('#tl-lanes li').length > 0, null, { timeout: 10000 });
  const workers = Number(await page.textContent('#fact-workers'));
  const laneNames = await page.$$eval('#tl-lanes li', (lis) => lis.map((li) => li.textContent));
  const wantLanes = ['duet-io', ...Array.from({ length: workers }, (_, i) => `duet-w${i}`)];
  check(JSON.stringify(laneNames) === JSON.stringify(wantLanes), `timeline lanes ${laneNames.join(', ')}`);

  // Try it: many waits at once.
  await page.click('#try-fanout button');
  await finished('#try-fanout', 30000);
  const fanout = await page.textContent('#try-fanout .result');
  const fanoutMs = Number(/([\d,]+) ms on the server/.exec(fanout)?.[1].replace(/,/g, ''));
  check(fanoutMs >= 500 && fanoutMs < 5000, `1,000 waits of 500 ms took ${fanoutMs} ms on the server`);

  // Try it: the pool, then split.
  await page.click('#try-split button');
  await finished('#try-split', 60000);
  const split = await page.textContent('#try-split .result');
  check(/split in \d+ parts on \d+ workers/.test(split), `split run: ${split.replace(/\n/g, ' / ')}`);

  // Try it: the same work on the pool and inline, /healthz probed meanwhile.
  await page.click('#try-inline button[data-mode="pool"]');
  await finished('#try-inline', 60000);
  await page.click('#try-inline button[data-mode="inline"]');
  await finished('#try-inline', 60000);
  const maxPool = Number(await page.getAttribute('#try-inline', 'data-max-pool'));
  const maxInline = Number(await page.getAttribute('#try-inline', 'data-max-inline'));
  const chartMax = await page.$$eval('#try-inline .legend li', (lis) => lis.length);
  check(chartMax === 2, 'the probe chart has a pool series and an inline series');
  check(
    maxInline >= 10 * maxPool,
    `slowest probe: inline ${maxInline.toFixed(1)} ms >= 10 x pool ${maxPool.toFixed(1)} ms`,
  );

  // Try it: the same calls waited for on the loop, then on the blocking threads (100 calls, 64 threads).
  await page.click('#try-call button');
  await finished('#try-call', 60000);
  const call = await page.textContent('#try-call .result');
  const loopMs = Number(await page.getAttribute('#try-call', 'data-loop-ms'));
  const threadsMs = Number(await page.getAttribute('#try-call', 'data-threads-ms'));
  check(
    /^loop: .* model event-loop/m.test(call) && /^threads: .* model blocking-thread.*context switches/m.test(call),
    `loop vs threads run: ${call.replace(/\n/g, ' / ')}`,
  );
  check(threadsMs > loopMs, `the threads run took longer: ${threadsMs.toFixed(0)} ms > ${loopMs.toFixed(0)} ms`);

  // The timeline draws a few of the blocking threads' lanes, and says how many ran a job.
  const blockingSummary = await page
    .waitForFunction(
      () => /jobs on \d+ blocking threads/.test(document.querySelector('#tl-summary').textContent),
      null,
      { timeout: 10000 },
    )
    .then(() => page.textContent('#tl-summary'))
    .catch(() => '');
  const blockingLanes = await page.$$eval(
    '#tl-lanes li',
    (lis) => lis.filter((li) => /^duet-b\d+$/.test(li.textContent)).length,
  );
  check(
    /jobs on \d+ blocking threads/.test(blockingSummary) && blockingLanes >= 1 && blockingLanes <= 8,
    `the timeline draws ${blockingLanes} blocking lanes: ${blockingSummary}`,
  );

  // CPU per thread: the blocking threads are one series, not 64.
  const threadSeries = await page.$$eval('#chart-threads .legend li', (lis) => lis.map((li) => li.dataset.series));
  const blockingSeries = threadSeries.filter((name) => name.startsWith('duet-b'));
  check(
    blockingSeries.length <= 1 && threadSeries.length <= workers + 3,
    `CPU per thread legend: ${threadSeries.join(', ')}`,
  );

  // A hostile parameter, reflected by the timeline's table of requests, is shown as text.
  const hostile = '<img/src/onerror=alert(1)>';
  await rawGet(port, `/io/sleep?q=${hostile}`);
  const shown = await page
    .waitForFunction(
      (h) => [...document.querySelectorAll('#tl-requests td')].some((td) => td.textContent === `q=${h}`),
      hostile,
      { timeout: 10000 },
    )
    .then(() => true)
    .catch(() => false);
  check(shown, 'a hostile query is shown in the timeline as text');
  check((await page.$$('#tl-requests img, #tl-requests script')).length === 0, 'and never as markup');

  // Under load the live numbers move: a rate for the loaded endpoint, requests in flight, waits in the timeline.
  const before = await page.textContent('#chart-work li[data-series="in flight"] .value');
  const load = Promise.all([runLoad(port, 8, 200, '/io/sleep?ms=100'), runLoad(port, 8, 2, '/cpu/fib?n=30')]);
  await sleep(5500);
  const rateText = await page
    .textContent('#endpoints tr[data-endpoint="/io/sleep"] td:nth-child(2)', { timeout: 1000 })
    .catch(() => '0');
  const rate = Number(rateText.replace(/,/g, ''));
  const inFlight = Number((await page.textContent('#chart-work li[data-series="in flight"] .value')).replace(/,/g, ''));
  check(rate > 100, `/io/sleep rate under load: ${rateText} requests/s`);
  check(inFlight > 20 && String(inFlight) !== before, `requests in flight under load: ${inFlight} (was ${before})`);
  const summary = await page.textContent('#tl-summary');
  const overlapping = Number(/up to ([\d,]+) waiting at once/.exec(summary)?.[1].replace(/,/g, '') ?? 0);
  check(overlapping > 20, `the timeline shows overlapping waits: ${summary}`);
  const shot = path.join(args.out, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  if (args.screenshot) copyFileSync(shot, args.screenshot);
  await load;

  check(consoleErrors.length === 0, `no console error: ${JSON.stringify(consoleErrors)}`);
  check(dialogs.length === 0, `no dialog opened: ${JSON.stringify(dialogs)}`);

  // A restart: the page says it is disconnected, then reconnects by itself.
  const stopped = await stopServer(server);
  check(stopped === 0, `the server drained and exited with 0 (got ${stopped})`);
  const down = await page
    .waitForSelector('#conn[data-state="disconnected"]', { timeout: 10000 })
    .then(() => true)
    .catch(() => false);
  check(down, 'with the server stopped the page says it is disconnected');
  await page.screenshot({ path: path.join(args.out, 'dashboard-disconnected.png') });
  server = await startServer(port);
  const up = await page
    .waitForSelector('#conn[data-state="live"]', { timeout: 15000 })
    .then(() => true)
    .catch(() => false);
  check(up, 'after a restart the stream reconnects by itself');

  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, `no CSP violation: ${JSON.stringify(csp)}`);
} catch (err) {
  failures.push(String(err));
  console.error(err);
} finally {
  await browser?.close();
  const code = await stopServer(server);
  check(code === 0, `the restarted server exited with 0 (got ${code})`);
}
if (failures.length > 0) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
