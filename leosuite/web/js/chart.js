// A server's CPU and memory over the last hour: a uPlot chart with a time axis, a CPU %
// axis (left) and a memory axis (right), first filled with the samples the daemon
// kept (server.stats_history), then by the live stats pushes. The canvas is hidden
// from assistive technology: the figure's caption says the same in words. A history
// read that fails is tried again (and on a reconnection); only the newest read counts.

import uPlot from "/ui/vendor/uplot/uPlot.esm.js";
import { formatCpu, watch } from "./live.js";
import { errorText, formatBytes, formatDuration, h } from "./ui.js";

/** Seconds of samples shown (what the daemon keeps). */
const SPAN = 3600;
const HEIGHT = 200;
/** Seconds before a failed read of the kept samples is tried again. */
const RETRY = 3;

function cssColor(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/**
 * statsChart(app, name) -> {el, load(), add(sample), destroy()}
 *  - load(): (re)read the daemon's kept samples and draw them
 *  - add({cpu, memory, threads}): a live sample, taken now
 * ``el.dataset.history`` is "loading", "loaded" (the kept samples are drawn) or
 * "failed" (only live samples are, until a read succeeds).
 */
export function statsChart(app, name) {
  const caption = h("figcaption", { class: "stats-caption", "aria-live": "off" });
  const canvas = h("div", { class: "stats-plot", "aria-hidden": "true" });
  const el = h(
    "figure",
    { class: "stats-chart card", dataset: { samples: "0", history: "loading" } },
    h("h2", { class: "stats-title", text: "CPU and memory, last hour" }),
    canvas,
    caption,
  );
  let interval = 2;
  let samples = []; // {t, cpu, memory, threads}, oldest first
  let plot = null;
  let closed = false;
  let loaded = false;
  let pending = []; // live samples that came before the history did
  let failure = ""; // why the kept samples could not be read
  let reads = 0; // the newest history read: an older answer is stale
  let retry = null; // the timer of the next read after a failure

  function data() {
    // A pause longer than a few intervals (the server was stopped) is a gap, not a line.
    const t = [];
    const cpu = [];
    const memory = [];
    let last = null;
    for (const s of samples) {
      if (last !== null && s.t - last > interval * 3) {
        t.push((last + s.t) / 2);
        cpu.push(null);
        memory.push(null);
      }
      t.push(s.t);
      cpu.push(s.cpu);
      memory.push(s.memory);
      last = s.t;
    }
    return [t, cpu, memory];
  }

  function width() {
    return Math.max(200, Math.floor(canvas.clientWidth || el.clientWidth || 600));
  }

  function draw() {
    if (closed) return;
    const now = Date.now() / 1000;
    samples = samples.filter((s) => s.t >= now - SPAN);
    el.dataset.samples = String(samples.length);
    describe();
    const d = data();
    if (plot) {
      plot.setData(d);
      return;
    }
    const text = cssColor("--muted", "#8b98a5");
    const grid = cssColor("--border", "#2c3640");
    const cpuColor = cssColor("--accent", "#3b82f6");
    const memColor = cssColor("--ok", "#2ea043");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    plot = new uPlot(
      {
        width: width(),
        height: HEIGHT,
        legend: { show: false },
        select: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          // At least a minute wide, so that the first samples are not a wall.
          x: { time: true, range: (_u, min, max) => [Math.min(min ?? now, (max ?? now) - 60), max ?? now] },
          cpu: { range: (_u, _min, max) => [0, Math.max(10, Math.ceil(((max ?? 0) * 1.15) / 10) * 10)] },
          memory: { range: (_u, _min, max) => [0, Math.max(1024 * 1024, (max ?? 0) * 1.15)] },
        },
        axes: [
          { ...axis },
          { ...axis, scale: "cpu", label: "CPU %", values: (_u, ticks) => ticks.map((v) => `${v} %`), size: 56 },
          {
            ...axis,
            scale: "memory",
            side: 1,
            label: "Memory",
            values: (_u, ticks) => ticks.map((v) => formatBytes(v)),
            size: 76,
            grid: { show: false },
          },
        ],
        series: [
          {},
          { label: "CPU", scale: "cpu", stroke: cpuColor, width: 1.5, points: { show: false } },
          { label: "Memory", scale: "memory", stroke: memColor, width: 1.5, points: { show: false } },
        ],
      },
      d,
      canvas,
    );
    el.classList.add("has-plot");
  }

  function describe() {
    if (failure) {
      caption.textContent = failure;
      return;
    }
    if (!samples.length) {
      caption.textContent = loaded ? "No samples yet: figures are kept while the server runs." : "Loading…";
      return;
    }
    const last = samples[samples.length - 1];
    const peak = samples.reduce((m, s) => Math.max(m, s.cpu ?? 0), 0);
    const most = samples.reduce((m, s) => Math.max(m, s.memory ?? 0), 0);
    const span = formatDuration(last.t - samples[0].t);
    caption.textContent =
      `CPU ${formatCpu(last.cpu)} (peak ${formatCpu(peak)}), memory ${formatBytes(last.memory)} ` +
      `(peak ${formatBytes(most)}) — ${samples.length} samples over ${span}.`;
  }

  async function load() {
    const mine = ++reads;
    clearTimeout(retry);
    try {
      const answer = await app.conn.call("server.stats_history", { server: name });
      if (closed || mine !== reads) return;
      interval = Number(answer.interval) || interval;
      const kept = Array.isArray(answer.samples) ? answer.samples : [];
      const newest = kept.length ? kept[kept.length - 1].t : 0;
      // Live samples newer than the kept ones stay (those drawn after a failed read too).
      samples = kept.concat(samples.concat(pending).filter((s) => s.t > newest));
      failure = "";
      el.dataset.history = "loaded";
    } catch (err) {
      if (closed || mine !== reads) return;
      failure = `The kept figures could not be loaded (trying again): ${errorText(err)}`;
      samples = samples.concat(pending);
      el.dataset.history = "failed";
      retry = setTimeout(load, RETRY * 1000);
    }
    loaded = true;
    pending = [];
    draw();
  }

  const resize = new ResizeObserver(() => {
    if (plot && !closed) plot.setSize({ width: width(), height: HEIGHT });
  });
  resize.observe(el);

  return {
    el,
    load,
    add(sample) {
      if (closed || typeof sample?.cpu !== "number") return;
      const s = { t: Date.now() / 1000, cpu: sample.cpu, memory: sample.memory, threads: sample.threads };
      if (!loaded) pending.push(s);
      else {
        samples.push(s);
        draw();
      }
    },
    destroy() {
      closed = true;
      clearTimeout(retry);
      resize.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

/** The server page's "Stats" tab (server.js TABS): the chart, fed live. */
export function mountStats(panel, app, name) {
  const chart = statsChart(app, name);
  panel.replaceChildren(chart.el);
  chart.load();
  const off = watch(app, {
    onStats(servers) {
      if (servers[name]) chart.add(servers[name]);
    },
    onReconnect: () => chart.load(),
  });
  return () => {
    off();
    chart.destroy();
  };
}
