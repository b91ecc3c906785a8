// The dashboard's drawing: a scrolling line chart with a text legend, and the timeline's swimlanes, on canvas.
// Plain canvas code: smaller than a charting library, and each chart says exactly what it draws.

const palette = ['#e8702a', '#3b6fd1', '#8a55c8', '#2e9e6a', '#c8406e', '#6f7d8c', '#b8932c', '#2aa7b8'];
export const colors = {
  request: '#3b6fd1',
  wait: '#79b887',
  queue: '#e0a030',
  job: '#8a55c8',
  inline: '#d8413a',
  blocking: '#2aa7b8',
};

// A canvas's drawing context sized to its box in device pixels, in CSS-pixel coordinates.
function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

// A round number at or above v for an axis's top: 1, 2 or 5 times a power of ten.
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) {
    if (v <= m * p) return m * p;
  }
  return 10 * p;
}

export function formatNumber(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

// Lines over a sliding x range, each series named in the legend with its latest value as text.
export class LineChart {
  // figure: an element holding a canvas and a ul.legend. options: span (x range), digits, unit, minTop
  // (the least y-axis top), xLabel (formats an x tick).
  constructor(figure, options = {}) {
    this.canvas = figure.querySelector('canvas');
    this.legend = figure.querySelector('.legend');
    this.span = options.span ?? 60;
    this.digits = options.digits ?? 1;
    this.unit = options.unit ?? '';
    this.minTop = options.minTop ?? 1;
    this.xLabel = options.xLabel ?? ((x) => (x === 0 ? 'now' : `${x}s`));
    this.relative = options.relative ?? true; // x ticks count back from the latest x
    this.bars = options.bars ?? false; // a bar from zero at each point instead of a line: separate samples
    this.legendMax = options.legendMax ?? false; // the legend gives each series' maximum, not its latest
    this.series = new Map();
    this.end = 0;
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  seriesFor(name) {
    let s = this.series.get(name);
    if (!s) {
      const li = document.createElement('li');
      const dot = document.createElement('span');
      dot.className = 'dot';
      const color = palette[this.series.size % palette.length];
      dot.style.background = color;
      const label = document.createElement('span');
      label.textContent = name;
      const value = document.createElement('span');
      value.className = 'value';
      value.textContent = '–';
      li.append(dot, label, value);
      li.dataset.series = name;
      this.legend.append(li);
      s = { name, color, points: [], value, label, li };
      this.series.set(name, s);
    }
    return s;
  }

  // The legend's text for a series, when it says more than its name (a count that the name must not carry, so
  // that the series stays one).
  label(name, text) {
    const s = this.seriesFor(name);
    if (s.label.textContent !== text) s.label.textContent = text;
  }

  // Adds (x, y) to a series; null y leaves a gap. Points older than the span are dropped.
  push(name, x, y) {
    const s = this.seriesFor(name);
    s.points.push([x, y]);
    while (s.points.length > 2 && s.points[1][0] < x - this.span) s.points.shift();
    const shown = this.legendMax ? this.max(name) : y;
    s.value.textContent =
      shown === null ? '–' : `${this.legendMax ? 'max ' : ''}${formatNumber(shown, this.digits)}${this.unit}`;
    this.end = Math.max(this.end, x);
  }

  // The largest y of a series (or of all) in the visible range.
  max(name) {
    let m = 0;
    for (const s of name ? [this.series.get(name)].filter(Boolean) : this.series.values()) {
      for (const [x, y] of s.points) {
        if (y !== null && x >= this.end - this.span) m = Math.max(m, y);
      }
    }
    return m;
  }

  draw() {
    const { ctx, w, h } = fit(this.canvas);
    const left = 44;
    const bottom = h - 16;
    const top = 6;
    const right = w - 6;
    const ymax = niceCeil(Math.max(this.minTop, this.max()));
    const x0 = this.relative ? this.end - this.span : 0;
    const sx = (x) => left + ((x - x0) / this.span) * (right - left);
    const sy = (y) => bottom - (y / ymax) * (bottom - top);
    ctx.font = '11px system-ui, sans-serif';
    ctx.strokeStyle = '#e3e6ea';
    ctx.fillStyle = '#5d6875';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    // Gridlines at round steps: a top of 1 or 5 (times a power of ten) in fifths, of 2 in quarters.
    const lead = ymax / 10 ** Math.floor(Math.log10(ymax));
    const steps = Math.round(lead) === 2 ? 4 : 5;
    const stepDigits = Math.max(0, -Math.floor(Math.log10(ymax / steps) + 1e-9));
    for (let i = 0; i <= steps; ++i) {
      const y = (ymax * i) / steps;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(sy(y)) + 0.5);
      ctx.lineTo(right, Math.round(sy(y)) + 0.5);
      ctx.stroke();
      ctx.fillText(formatNumber(y, stepDigits), left - 4, sy(y));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let i = 0; i <= 4; ++i) {
      const x = x0 + (this.span * i) / 4;
      const label = this.relative ? this.xLabel(Math.round(x - this.end)) : this.xLabel(x);
      ctx.fillText(label, Math.min(Math.max(sx(x), left + 12), right - 12), bottom + 3);
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, 0, right - left, h);
    ctx.clip();
    for (const s of this.series.values()) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      if (this.bars) {
        ctx.fillStyle = s.color;
        for (const [x, y] of s.points) {
          if (y !== null) ctx.fillRect(sx(x) - 1, sy(y), 2, Math.max(1, bottom - sy(y)));
        }
        continue;
      }
      ctx.beginPath();
      let pen = false;
      for (const [x, y] of s.points) {
        if (y === null) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(sx(x), sy(y));
        else ctx.moveTo(sx(x), sy(y));
        pen = true;
      }
      ctx.stroke();
    }
    ctx.restore();
  }
}

// The timeline's swimlanes: one lane per thread; on duet-io, the waits stacked in rows under the thread's own
// slices, so that requests waiting at the same time are seen side by side.
export class Swimlanes {
  constructor(canvas, laneList) {
    this.canvas = canvas;
    this.laneList = laneList;
    this.model = null;
    this.boxes = []; // [x, y, w, h, slice], for pointing
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  static laneHeight = 26;
  static waitRow = 3;
  static maxWaitRows = 48; // the summary gives the full count

  // model: { from, to, lanes: [{ name, tid, slices: [{ start, end, kind, slice }], waits: [...] }] }; the
  // lanes may differ from one model to the next (a blocking thread's lane is there only while it is used).
  show(model) {
    this.model = model;
    const names = model.lanes.map((l) => l.name);
    if (names.join('\n') !== [...this.laneList.children].map((li) => li.textContent).join('\n')) {
      this.laneList.replaceChildren(
        ...model.lanes.map((l) => {
          const li = document.createElement('li');
          li.textContent = l.name;
          li.dataset.tid = String(l.tid);
          if (l.rest) li.className = 'rest';
          return li;
        }),
      );
    }
    [...this.laneList.children].forEach((li, i) => {
      li.style.height = `${this.heightOf(model.lanes[i])}px`;
    });
    this.canvas.style.height = `${model.lanes.reduce((sum, l) => sum + this.heightOf(l), 0)}px`;
    this.draw();
  }

  heightOf(lane) {
    const rows = Math.min(lane.waitRows ?? 0, Swimlanes.maxWaitRows);
    return Swimlanes.laneHeight + (rows > 0 ? rows * Swimlanes.waitRow + 6 : 0);
  }

  draw() {
    const { ctx, w } = fit(this.canvas);
    this.boxes = [];
    if (!this.model) return;
    const { from, to, lanes } = this.model;
    const sx = (t) => ((t - from) / (to - from)) * w;
    let y = 0;
    for (const lane of lanes) {
      const height = this.heightOf(lane);
      for (const s of lane.slices) {
        const x = sx(s.start);
        const width = Math.max(1, sx(s.end) - x);
        ctx.fillStyle = colors[s.kind];
        ctx.fillRect(x, y + 4, width, Swimlanes.laneHeight - 8);
        this.boxes.push([x, y + 4, width, Swimlanes.laneHeight - 8, s.slice]);
      }
      for (const s of lane.waits) {
        if (s.row >= Swimlanes.maxWaitRows) continue;
        const x = sx(s.start);
        const width = Math.max(1, sx(s.end) - x);
        const wy = y + Swimlanes.laneHeight + s.row * Swimlanes.waitRow;
        ctx.fillStyle = colors[s.kind];
        ctx.fillRect(x, wy, width, Swimlanes.waitRow - 1);
        this.boxes.push([x, wy, width, Swimlanes.waitRow - 1, s.slice]);
      }
      if ((lane.waitRows ?? 0) > Swimlanes.maxWaitRows) {
        const note = `+${lane.waitRows - Swimlanes.maxWaitRows} rows of waits not drawn`;
        ctx.font = '11px system-ui, sans-serif';
        ctx.textAlign = 'right';
        ctx.textBaseline = 'bottom';
        ctx.fillStyle = 'rgba(255,255,255,0.85)';
        ctx.fillRect(w - 8 - ctx.measureText(note).width, y + height - 15, ctx.measureText(note).width + 8, 14);
        ctx.fillStyle = '#1d232b';
        ctx.fillText(note, w - 4, y + height - 1);
      }
      y += height;
      ctx.fillStyle = '#d9dde3';
      ctx.fillRect(0, y - 1, w, 1);
    }
    // The time axis: a tick every 250 ms, labelled in ms before the window's end.
    ctx.fillStyle = 'rgba(93,104,117,0.25)';
    for (let t = to; t >= from; t -= 250e3) ctx.fillRect(Math.round(sx(t)), 0, 1, y);
  }

  // The slice under a point in CSS pixels, or null; the latest drawn wins, as it is on top.
  sliceAt(px, py) {
    for (let i = this.boxes.length - 1; i >= 0; --i) {
      const [x, y, w, h, slice] = this.boxes[i];
      if (px >= x - 1 && px <= x + w + 1 && py >= y && py <= y + h) return slice;
    }
    return null;
  }
}
