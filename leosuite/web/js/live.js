// Live server data shared by the server views: one events.subscribe and one
// stats.subscribe per connection (the API refuses a second subscription of either on
// one connection, so views never subscribe themselves: they watch() this hub), the
// recent CPU/memory samples of every server, and small uPlot sparklines.

import uPlot from "/ui/vendor/uplot/uPlot.esm.js";
import { formatBytes, h } from "./ui.js";

/** Samples kept per server for the sparklines. */
export const HISTORY = 60;

const hubs = new WeakMap();

function hubOf(conn) {
  let hub = hubs.get(conn);
  if (hub) return hub;
  hub = { history: new Map() };
  hubs.set(conn, hub);
  // Kept for the connection's life: views come and go, the subscriptions stay (and the
  // connection renews them after every reconnect).
  conn.subscribe({ type: "events.subscribe", unsubscribe: "events.unsubscribe" });
  conn.subscribe({ type: "stats.subscribe", unsubscribe: "stats.unsubscribe" });
  conn.onPush("stats", (content) => {
    const now = Date.now() / 1000;
    for (const [name, s] of Object.entries(content?.servers || {})) {
      if (!s || typeof s !== "object") continue;
      let h = hub.history.get(name);
      if (!h) hub.history.set(name, (h = { t: [], cpu: [], memory: [] }));
      h.t.push(now);
      h.cpu.push(typeof s.cpu === "number" ? s.cpu : null);
      h.memory.push(typeof s.memory === "number" ? s.memory : null);
      if (h.t.length > HISTORY) {
        for (const k of ["t", "cpu", "memory"]) h[k].splice(0, h[k].length - HISTORY);
      }
    }
  });
  return hub;
}

/** The recent samples of ``name``: ``{t: [], cpu: [], memory: []}`` or undefined. */
export function historyOf(app, name) {
  return hubOf(app.conn).history.get(name);
}

/** Forget a destroyed server's samples. */
export function forget(app, name) {
  hubOf(app.conn).history.delete(name);
}

/**
 * Watch the live feed; returns a function that stops watching.
 *  - onState({server, old, new, reason}): a server changed state
 *  - onStats({name: {status, pid, uptime, cpu, memory, threads}}): a sample of the
 *    running servers (after the hub has recorded it, so historyOf() includes it)
 *  - onLog(entry): an audit entry (ADMIN accounts only)
 *  - onReconnect(): the connection is back after a loss (pushes were missed)
 */
export function watch(app, { onState, onStats, onLog, onReconnect } = {}) {
  const conn = app.conn;
  hubOf(conn);
  const offs = [];
  offs.push(
    conn.onPush("event", (e) => {
      if (e?.kind === "state" && onState) onState(e);
      else if (e?.kind === "log" && onLog) onLog(e);
    }),
  );
  if (onStats) offs.push(conn.onPush("stats", (c) => onStats(c?.servers || {})));
  if (onReconnect) {
    let lost = false;
    const listener = (ev) => {
      const state = ev.detail?.state;
      if (state === "reconnecting") lost = true;
      else if (state === "open" && lost) {
        lost = false;
        onReconnect();
      }
    };
    conn.addEventListener("state", listener);
    offs.push(() => conn.removeEventListener("state", listener));
  }
  return () => offs.forEach((off) => off());
}

function cssColor(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

/** "12.5 %" */
export function formatCpu(cpu) {
  return typeof cpu === "number" ? `${cpu.toFixed(1)} %` : "–";
}

/**
 * A labelled metric with a sparkline: ``{el, update(history, current)}``.
 * kind: "cpu" or "memory". The chart is drawn once there are samples.
 */
export function sparkline(kind, { width = 100, height = 28 } = {}) {
  const label = kind === "cpu" ? "CPU" : "Memory";
  const format = kind === "cpu" ? formatCpu : formatBytes;
  const value = h("span", { class: "spark-value", text: "–" });
  const chart = h("div", { class: "spark-chart", "aria-hidden": "true" });
  chart.style.width = `${width}px`;
  chart.style.height = `${height}px`;
  const el = h(
    "div",
    { class: `spark spark-${kind}`, dataset: { metric: kind } },
    h("span", { class: "spark-label", text: label }),
    value,
    chart,
  );
  let plot = null;
  return {
    el,
    update(history, current) {
      value.textContent = format(current);
      const n = history ? history.t.length : 0;
      chart.dataset.samples = String(n);
      if (n < 2) return; // a line needs two points
      const data = [history.t.slice(), history[kind].slice()];
      if (!plot) {
        const stroke = cssColor(kind === "cpu" ? "--accent" : "--ok", "#3b82f6");
        const fill = /^#[0-9a-f]{6}$/i.test(stroke) ? `${stroke}33` : undefined;
        plot = new uPlot(
          {
            width,
            height,
            cursor: { show: false },
            select: { show: false },
            legend: { show: false },
            padding: [2, 0, 2, 0],
            scales: {
              // Exactly the samples' span (uPlot would round it to "nice" numbers).
              x: { time: false, range: (_u, min, max) => [min, max] },
              y: {
                range: (_u, min, max) =>
                  kind === "cpu" ? [0, Math.max(5, max ?? 0)] : [0, Math.max(1, (max ?? 0) * 1.15)],
              },
            },
            axes: [{ show: false }, { show: false }],
            series: [{}, { stroke, width: 1.5, fill, points: { show: false } }],
          },
          data,
          chart,
        );
        chart.classList.add("has-plot");
      } else {
        plot.setData(data);
      }
    },
    destroy() {
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

