// duet's dashboard: the live view fed by /stats/stream, the timeline drawn from /trace, and the Try-it runs.
// Every value from the server is inserted as text (textContent), never as markup.
import { LineChart, Swimlanes, formatNumber } from './charts.js';

const $ = (selector) => document.querySelector(selector);
// The blocking threads of mode=threads (64 by default) are named duet-b0, duet-b1, …: the live view sums them
// into one series and the timeline draws a few of their lanes, so that they do not crowd out the rest.
const isBlocking = (name) => /^duet-b\d+$/.test(name);
const blockingSeries = 'duet-b*';
const setText = (selector, text) => {
  $(selector).textContent = text;
};

// ---- Live view -------------------------------------------------------------------------------------------

const charts = {
  threads: new LineChart($('#chart-threads'), { digits: 0, unit: '%', minTop: 10 }),
  cores: new LineChart($('#chart-cores'), { digits: 0, unit: '%', minTop: 10 }),
  work: new LineChart($('#chart-work'), { digits: 0, minTop: 4 }),
  lag: new LineChart($('#chart-lag'), { digits: 2, unit: ' ms', minTop: 1 }),
  rate: new LineChart($('#chart-rate'), { digits: 0, minTop: 10 }),
  p99: new LineChart($('#chart-p99'), { digits: 1, unit: ' ms', minTop: 1 }),
};

// The stream's previous snapshot, for rates: counts differ between two snapshots over their uptimes.
let previous = null;
let stream = null;
let lastEvent = 0;

function formatDuration(s) {
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function onSnapshot(snap) {
  const t = performance.now() / 1000;
  setText('#fact-version', snap.version);
  setText('#fact-uptime', formatDuration(snap.uptime_s));
  setText('#fact-cores', String(snap.cpus.usable));
  setText('#fact-workers', String(snap.pool.workers));
  setText('#fact-blocking', snap.blocking ? String(snap.blocking.threads) : '–');
  const upstream = snap.upstream?.connections;
  setText(
    '#fact-upstream',
    upstream ? `${formatNumber(upstream.open, 0)} open, ${formatNumber(upstream.idle, 0)} idle` : '–',
  );
  setText('#fact-connections', formatNumber(snap.connections.open, 0));
  setText('#fact-stalls', formatNumber(snap.event_loop.stalls, 0));
  setText('#fact-rss', `${formatNumber(snap.memory.rss_bytes / 1048576, 1)} MB`);

  // The first snapshot after a (re)start has no CPU interval yet; a restarted server starts its counts over.
  const restarted = previous !== null && snap.uptime_s < previous.uptime_s;
  if (snap.cpu.interval_s > 0) {
    // A series per thread, by name; a name that two threads share is told apart by thread id. The blocking
    // threads are one series, their sum: each alone is mostly asleep, and 64 lines would hide the others.
    const own = snap.cpu.threads.filter((th) => !isBlocking(th.name));
    const blocking = snap.cpu.threads.filter((th) => isBlocking(th.name));
    const names = own.map((th) => th.name);
    for (const th of own) {
      const shared = names.indexOf(th.name) !== names.lastIndexOf(th.name);
      charts.threads.push(shared ? `${th.name} (${th.tid})` : th.name, t, th.percent);
    }
    if (blocking.length > 0) {
      const sum = blocking.reduce((total, th) => total + th.percent, 0);
      charts.threads.push(blockingSeries, t, sum);
      charts.threads.label(blockingSeries, `duet-b* (${blocking.length} threads)`);
    }
    for (const c of snap.cpu.cores) charts.cores.push(`cpu ${c.cpu}`, t, Math.min(100, c.user + c.system));
  }
  charts.work.push('in flight', t, snap.requests.total.in_flight);
  charts.work.push('queued for a worker', t, snap.pool.queued);
  charts.work.push('busy workers', t, snap.pool.busy);
  if (snap.blocking) {
    charts.work.push('queued for a blocking thread', t, snap.blocking.queued);
    charts.work.push('busy blocking threads', t, snap.blocking.busy);
  }
  const lag = snap.event_loop.lag_us.recent;
  charts.lag.push('p99', t, lag.p99 / 1000);
  charts.lag.push('max', t, lag.max / 1000);

  const rows = [];
  for (const [path, ep] of Object.entries(snap.requests.endpoints)) {
    if (path.startsWith('/ui/')) continue; // the page's own files
    const before = previous && !restarted ? previous.requests.endpoints[path] : null;
    const dt = previous ? snap.uptime_s - previous.uptime_s : 0;
    const rate = before && dt > 0 ? Math.max(0, ep.count - before.count) / dt : null;
    const recent = ep.latency_us.recent;
    // An endpoint enters the charts once it has traffic, and stays while it is in them.
    if ((rate !== null && rate > 0) || charts.rate.series.has(path)) {
      charts.rate.push(path, t, rate ?? 0);
      charts.p99.push(path, t, recent.count > 0 ? recent.p99 / 1000 : null);
    }
    if (ep.count > 0 || ep.in_flight > 0) rows.push([path, rate, recent, ep]);
  }
  const tbody = $('#endpoints tbody');
  tbody.replaceChildren(
    ...rows.map(([path, rate, recent, ep]) => {
      const tr = document.createElement('tr');
      tr.dataset.endpoint = path;
      const cells = [
        path,
        formatNumber(rate, 1),
        recent.count > 0 ? formatNumber(recent.p50 / 1000, 2) : '–',
        recent.count > 0 ? formatNumber(recent.p99 / 1000, 2) : '–',
        formatNumber(ep.in_flight, 0),
        formatNumber(ep.count, 0),
      ];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );
  for (const chart of Object.values(charts)) chart.draw();
  previous = snap;
}

function setConnection(state, text) {
  const el = $('#conn');
  el.dataset.state = state;
  el.textContent = text;
  document.body.dataset.stream = state;
}

// The stream reconnects by itself after a dropped connection (the server's retry: field). An answer other than
// a stream (a restart's 503, a proxy's error page) closes it for good: then the page opens a new one.
// The page is live from the first snapshot on, not from the connection's opening: a proxy may accept the
// connection and pass nothing.
function connect() {
  const es = new EventSource('stats/stream');
  stream = es;
  lastEvent = performance.now(); // the watchdog's clock starts with each attempt
  es.addEventListener('stats', (e) => {
    lastEvent = performance.now();
    setConnection('live', 'live');
    onSnapshot(JSON.parse(e.data));
  });
  es.addEventListener('error', () => {
    if (es !== stream) return; // an attempt the watchdog has given up on
    setConnection('disconnected', 'disconnected: reconnecting…');
    if (es.readyState === EventSource.CLOSED) {
      stream = null;
      setTimeout(connect, 2000);
    }
  });
}

// A connection can stay open with nothing arriving (a suspended server, a stalled proxy): after five missed
// intervals the page says so, and starts over.
setInterval(() => {
  if (stream && performance.now() - lastEvent > 5000) {
    setConnection('disconnected', 'disconnected: no update for 5 s, reconnecting…');
    stream.close();
    connect();
  }
}, 1000);

// ---- Timeline --------------------------------------------------------------------------------------------

const timelineMs = 2000;
const maxBlockingLanes = 8; // the others are drawn together in one lane; the summary gives their count
const lanes = new Swimlanes($('#tl-canvas'), $('#tl-lanes'));

// Trace Event Format -> lanes: complete slices (ph X) on their thread; async waits (ph b/e, paired by category
// and id) on the thread that awaits, packed into rows so that overlapping waits sit side by side.
function timelineModel(trace) {
  const from = trace.otherData.from_us;
  const to = trace.otherData.to_us;
  const threads = new Map();
  const lane = (tid) => {
    if (!threads.has(tid)) threads.set(tid, { tid, name: `thread ${tid}`, order: 1e9, slices: [], waits: [] });
    return threads.get(tid);
  };
  const open = new Map();
  const requests = new Map();
  for (const e of trace.traceEvents) {
    if (e.ph === 'M') {
      if (e.name === 'thread_name') lane(e.tid).name = e.args.name;
      if (e.name === 'thread_sort_index') lane(e.tid).order = e.args.sort_index;
    } else if (e.ph === 'X') {
      const kind = e.cat === 'inline' ? 'inline' : e.cat === 'job' ? 'job' : 'request';
      const slice = { name: e.name, cat: e.cat, start: e.ts, end: e.ts + e.dur, args: e.args ?? {} };
      lane(e.tid).slices.push({ start: e.ts, end: e.ts + e.dur, kind, slice });
      if (e.cat === 'request') {
        // A request's slices share its id; a plain one (/healthz, no id) is one slice.
        const key = e.args?.id ? e.args.id : `@${e.ts}`;
        const r = requests.get(key) ?? { id: e.args?.id ?? '', name: e.name, args: e.args ?? {}, start: e.ts, end: 0 };
        r.start = Math.min(r.start, e.ts);
        r.end = Math.max(r.end, e.ts + e.dur);
        requests.set(key, r);
      }
    } else if (e.ph === 'b') {
      open.set(`${e.cat}/${e.id}`, e);
    } else if (e.ph === 'e') {
      const key = `${e.cat}/${e.id}`;
      const b = open.get(key);
      open.delete(key);
      addWait(lane(e.tid), b ?? e, b ? b.ts : from, e.ts);
    }
  }
  for (const b of open.values()) addWait(lane(b.tid), b, b.ts, to); // still waiting at the window's end
  const ordered = [...threads.values()].sort((a, b) => a.order - b.order || a.tid - b.tid);
  for (const l of ordered) l.waitRows = packRows(l.waits);
  // The blocking threads' lanes come and go with their use (the server names only those that ran a job): the
  // first few are drawn each in its own lane, the rest overlaid in one.
  const blocking = ordered.filter((l) => isBlocking(l.name));
  for (const l of blocking) {
    for (const s of l.slices) s.kind = 'blocking';
  }
  const hidden = blocking.slice(maxBlockingLanes);
  const drawn = ordered.filter((l) => !hidden.includes(l));
  if (hidden.length > 0) {
    const slices = hidden.flatMap((l) => l.slices);
    drawn.push({ tid: 0, name: `+${hidden.length} more`, rest: true, slices, waits: [], waitRows: 0 });
  }
  return { from, to, lanes: drawn, blocking, requests: [...requests.values()] };
}

function addWait(l, e, start, end) {
  const kind = e.cat === 'queue' ? 'queue' : 'wait';
  const slice = { name: e.name, cat: e.cat, start, end, args: e.args ?? {} };
  l.waits.push({ start, end, kind, slice, id: String(e.id) });
}

// Greedy interval packing: each wait takes the first row free at its start, so the rows used are the most
// waits that overlapped at one moment. A job's time in the queue (id "W.part") lies within its request's wait
// for the workers (id "W") and is drawn on that wait's row.
function packRows(waits) {
  waits.sort((a, b) => a.start - b.start);
  const rowEnds = [];
  const rowOf = new Map();
  for (const w of waits) {
    if (w.kind !== 'wait') continue;
    let row = rowEnds.findIndex((end) => end <= w.start);
    if (row < 0) row = rowEnds.push(0) - 1;
    rowEnds[row] = w.end;
    w.row = row;
    rowOf.set(w.id, row);
  }
  for (const w of waits) {
    if (w.kind === 'queue') w.row = rowOf.get(w.id.split('.')[0]) ?? Infinity; // Infinity: not drawn
  }
  waits.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'wait' ? -1 : 1)); // queues on top
  return rowEnds.length;
}

function showTimeline(model) {
  lanes.show(model);
  const io = model.lanes.find((l) => l.name === 'duet-io');
  const blocked = io
    ? io.slices.filter((s) => s.kind === 'inline').reduce((ms, s) => ms + (s.end - s.start) / 1e3, 0)
    : 0;
  // The page's own /trace requests are jobs too (their encoding): drawn, but not counted.
  const theirs = (l) => l.slices.filter((s) => s.slice.name !== '/trace');
  const workerLanes = model.lanes.filter((l) => l.name !== 'duet-io' && !l.rest && !isBlocking(l.name));
  const jobs = workerLanes.reduce((n, l) => n + theirs(l).length, 0);
  const busyWorkers = workerLanes.filter((l) => theirs(l).length > 0).length;
  const blockingJobs = model.blocking.reduce((n, l) => n + l.slices.length, 0);
  const drawn = Math.min(model.blocking.length, maxBlockingLanes);
  const onBlocking =
    model.blocking.length === 0
      ? ''
      : `${formatNumber(blockingJobs, 0)} jobs on ${model.blocking.length} blocking threads` +
        (drawn < model.blocking.length ? ` (${drawn} lanes drawn, the rest in one); ` : '; ');
  setText(
    '#tl-summary',
    `${formatNumber(model.requests.length, 0)} requests; up to ${formatNumber(io?.waitRows ?? 0, 0)} waiting at once ` +
      `on duet-io; ${formatNumber(jobs, 0)} jobs on ${busyWorkers} workers (besides this page's /trace); ` +
      onBlocking +
      `duet-io blocked inline ` +
      `${formatNumber(blocked, 1)} ms`,
  );
  const latest = model.requests.sort((a, b) => b.end - a.end).slice(0, 12);
  $('#tl-requests tbody').replaceChildren(
    ...latest.map((r) => {
      const tr = document.createElement('tr');
      const cells = [
        r.id,
        r.name,
        r.args.query ?? '',
        String(r.args.status ?? ''),
        formatNumber((r.end - r.start) / 1e3, 2),
      ];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      return tr;
    }),
  );
}

async function fetchTrace() {
  try {
    const res = await fetch(`trace?ms=${timelineMs}`, { cache: 'no-store', signal: AbortSignal.timeout(5000) });
    return res.ok ? await res.json() : null;
  } catch {
    return null; // the server is away or slow: the stream's status says so; the next refresh tries again
  }
}

async function refreshTimeline() {
  try {
    if (!$('#tl-pause').checked && document.visibilityState === 'visible') {
      const trace = await fetchTrace();
      if (trace) showTimeline(timelineModel(trace));
    }
  } finally {
    setTimeout(refreshTimeline, 1000); // an error above is the console's, and the timeline goes on
  }
}

$('#tl-canvas').addEventListener('mousemove', (e) => {
  const rect = e.target.getBoundingClientRect();
  const s = lanes.sliceAt(e.clientX - rect.left, e.clientY - rect.top);
  if (!s) return;
  const a = s.args;
  const parts = [`${s.name} (${a.phase ?? a.on ?? s.cat})`, `${formatNumber((s.end - s.start) / 1e3, 3)} ms`];
  if (a.id !== undefined) parts.push(`id ${a.id}`);
  if (a.query) parts.push(`query ${a.query}`);
  if (a.status !== undefined) parts.push(`status ${a.status}`);
  if (a.queued_us !== undefined) parts.push(`queued ${formatNumber(a.queued_us / 1e3, 3)} ms`);
  setText('#tl-detail', parts.join(' · '));
});

// ---- Try it ----------------------------------------------------------------------------------------------

// Each run's sizes, within the server's limits as its JSON index states them.
// Each run asks for the index first (once), and stays within what it states.
let limits = null;
async function limitsOf(path, name) {
  if (limits === null) {
    const { body } = await getJson('./', { Accept: 'application/json' });
    limits = new Map();
    for (const ep of body.endpoints) {
      for (const p of ep.params) limits.set(`${ep.path} ${p.name}`, p);
    }
  }
  return limits.get(`${path} ${name}`);
}
async function bounded(path, name, want) {
  const p = await limitsOf(path, name);
  return p && p.max !== undefined ? Math.max(p.min, Math.min(want, p.max)) : want;
}

// A JSON answer, or an error that says what came instead (a refusal's message, a proxy's status).
async function getJson(url, headers = {}) {
  const t0 = performance.now();
  const res = await fetch(url, { cache: 'no-store', headers });
  const isJson = (res.headers.get('content-type') ?? '').startsWith('application/json');
  const body = isJson ? await res.json() : null;
  if (!res.ok || !isJson) {
    throw new Error(`${res.status} ${body?.error?.message ?? res.statusText}`);
  }
  return { body, ms: performance.now() - t0 };
}

function runner(card, run) {
  const result = card.querySelector('.result');
  for (const button of card.querySelectorAll('button')) {
    button.addEventListener('click', async () => {
      const buttons = card.querySelectorAll('button');
      buttons.forEach((b) => (b.disabled = true));
      result.removeAttribute('data-error');
      card.dataset.state = 'running';
      result.textContent = 'running…';
      try {
        result.textContent = await run(button);
        card.dataset.state = 'done';
      } catch (err) {
        result.dataset.error = '';
        result.textContent = `failed: ${err.message}`;
        card.dataset.state = 'failed';
      } finally {
        buttons.forEach((b) => (b.disabled = false));
      }
    });
  }
}

runner($('#try-fanout'), async () => {
  const n = await bounded('/io/fanout', 'n', 1000);
  const ms = await bounded('/io/fanout', 'ms', 500);
  const { body, ms: took } = await getJson(`io/fanout?n=${n}&ms=${ms}`);
  return (
    `${formatNumber(n, 0)} waits of ${ms} ms: ${formatNumber(took, 0)} ms in this browser, ` +
    `${formatNumber(body.report.timing_us.total / 1e3, 0)} ms on the server.\n` +
    `One after another they would take ${formatNumber((n * ms) / 1e3, 0)} s.`
  );
});

const primesN = () => bounded('/cpu/primes', 'n', 10_000_000);

runner($('#try-split'), async () => {
  const n = await primesN();
  const pool = await getJson(`cpu/primes?n=${n}&mode=pool`);
  const split = await getJson(`cpu/primes?n=${n}&mode=split`);
  const s = split.body.report.split;
  const poolMs = pool.body.report.timing_us.total / 1e3;
  const splitMs = split.body.report.timing_us.total / 1e3;
  return (
    `pool, one job on ${pool.body.report.threads.worker?.name ?? 'a worker'}: ${formatNumber(poolMs, 0)} ms\n` +
    `split in ${s.parts} parts on ${new Set(s.per_part.map((p) => p.worker.name)).size} workers: ` +
    `${formatNumber(splitMs, 0)} ms, ${formatNumber(poolMs / splitMs, 2)}× faster than the pool run ` +
    `(the server's own speedup ${formatNumber(s.speedup, 2)}×, ${formatNumber(s.efficiency * 100, 0)}% of ` +
    `${s.parts} parts)`
  );
});

// The probe: /healthz one after another, a few ms apart, from a little before the work starts to a little
// after it ends; each probe's latency is charted against the time since the probes began.
const probeChart = new LineChart($('#try-inline'), {
  digits: 1,
  unit: ' ms',
  minTop: 5,
  relative: false,
  span: 1,
  bars: true, // one bar per probe, at the time it was sent
  legendMax: true,
  xLabel: (x) => `${formatNumber(x, 1)} s`,
});
const probeMax = {};
const probeMargin = 150; // ms of probes before and after the work, to show the loop's usual answer

async function probeAround(startWork, series) {
  const start = performance.now();
  let work = null;
  let endedAt = Infinity;
  let max = 0;
  while (performance.now() < endedAt + probeMargin) {
    if (work === null && performance.now() - start >= probeMargin) {
      work = startWork();
      const ended = () => (endedAt = performance.now());
      work.then(ended, ended); // a refusal ends the probes too; the caller's await reports it
    }
    const t0 = performance.now();
    try {
      await fetch('healthz', { cache: 'no-store' });
    } catch {
      break;
    }
    const latency = performance.now() - t0;
    if (work !== null) max = Math.max(max, latency); // the probes while the work is asked for and runs
    const x = (t0 - start) / 1000;
    probeChart.span = Math.max(probeChart.span, x);
    probeChart.push(series, x, latency);
    probeChart.draw();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { work: await (work ?? startWork()), max };
}

runner($('#try-inline'), async (button) => {
  const mode = button.dataset.mode;
  const n = await primesN();
  const series = `${mode} probes`;
  if (probeChart.series.has(series)) probeChart.series.get(series).points = [];
  const { work, max } = await probeAround(() => getJson(`cpu/primes?n=${n}&mode=${mode}`), series);
  probeMax[mode] = max;
  const card = $('#try-inline');
  card.dataset[mode === 'pool' ? 'maxPool' : 'maxInline'] = max.toFixed(3);
  const lines = [
    `${mode}: the work took ${formatNumber(work.body.report.timing_us.total / 1e3, 0)} ms; ` +
      `the slowest /healthz probe meanwhile ${formatNumber(max, 1)} ms`,
  ];
  if (probeMax.pool !== undefined && probeMax.inline !== undefined) {
    lines.push(`inline's slowest probe is ${formatNumber(probeMax.inline / probeMax.pool, 0)}× the pool's`);
  }
  return lines.join('\n');
});

// The same n calls to the upstream, each waited for on the loop, then each on a blocking thread.
runner($('#try-call'), async () => {
  const n = await bounded('/io/call', 'n', 100);
  const ms = await bounded('/io/call', 'ms', 300);
  const card = $('#try-call');
  const took = {};
  const lines = [];
  for (const mode of ['loop', 'threads']) {
    const { body, ms: here } = await getJson(`io/call?n=${n}&ms=${ms}&mode=${mode}`);
    const r = body.report;
    took[mode] = r.timing_us.total / 1e3;
    card.dataset[`${mode}Ms`] = took[mode].toFixed(3);
    const cs = r.context_switches;
    const switches = cs
      ? `${formatNumber(cs.voluntary, 0)} voluntary + ${formatNumber(cs.involuntary, 0)} involuntary context switches`
      : 'context switches not reported: one thread waits for all the calls';
    const queued =
      r.timing_us.queue > 0 ? `, up to ${formatNumber(r.timing_us.queue / 1e3, 0)} ms queued for a thread` : '';
    lines.push(
      `${mode}: ${formatNumber(took[mode], 0)} ms on the server (${formatNumber(here, 0)} ms here), ` +
        `model ${r.model}${queued}; ${switches}`,
    );
  }
  const threads = previous?.blocking?.threads;
  lines.push(
    `${formatNumber(n, 0)} calls of ${ms} ms: threads took ${formatNumber(took.threads / took.loop, 1)}× the loop` +
      (threads ? ` with ${threads} blocking threads` : ''),
  );
  return lines.join('\n');
});

// ---- Start -----------------------------------------------------------------------------------------------

connect();
refreshTimeline();
