// Server page: version, stores, uptime, live request rate and latency, running jobs.
import { getJSON } from "../api.js";
import { errorBox, fmtSeconds, h, mount, table } from "../ui.js";

const HISTORY = 60;

function sparkline(values, width = 240, height = 40) {
  const max = Math.max(1e-9, ...values);
  const points = values.map((v, i) => `${(i / Math.max(1, HISTORY - 1)) * width},${height - (v / max) * (height - 2) - 1}`);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "sparkline");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  svg.append(line);
  return svg;
}

function jobRow(job) {
  const bar = job.total ? h("progress", { max: job.total, value: job.done }) : h("progress", {});
  const amount = job.total ? `${job.done} / ${job.total} ${job.unit}` : `${job.done} ${job.unit}`;
  return [
    job.kind,
    job.description,
    h("span", { class: `state ${job.state}` }, job.state),
    h("span", {}, bar, " ", amount),
    `${job.seconds.toFixed(1)} s`,
    job.error ? h("span", { class: "error-text" }, job.error) : "",
  ];
}

export async function render(main) {
  const info = await getJSON("server/info");
  const infoTable = table(["", ""], Object.entries(info).map(([k, v]) => [k, v]), { class: "kv", id: "server-info" });
  const live = h("div", { id: "activity" });
  const jobs = h("div", { id: "jobs" });
  mount(main,
    h("h1", {}, "Server"),
    h("section", { class: "cards" },
      h("div", { class: "card" }, h("h2", {}, "Activity (last 10 s)"), live),
      h("div", { class: "card" }, h("h2", {}, "Information"), infoTable)),
    h("section", {}, h("h2", {}, "Jobs"), jobs),
    h("p", { class: "muted" }, "Prometheus metrics: ", h("a", { href: "/metrics" }, "/metrics")));

  const rates = [], p50s = [];
  let stopped = false;
  async function poll() {
    if (stopped) return;
    try {
      const [act, list] = await Promise.all([getJSON("server/activity"), getJSON("server/jobs")]);
      rates.push(act.requests_per_second); p50s.push(act.p50_ms);
      while (rates.length > HISTORY) { rates.shift(); p50s.shift(); }
      mount(live,
        h("div", { class: "metric" }, h("b", { id: "rate" }, act.requests_per_second.toFixed(1)), " requests/s ", sparkline(rates)),
        h("div", { class: "metric" }, "latency p50 ", h("b", { id: "p50" }, act.p50_ms.toFixed(1)), " ms · p99 ",
          h("b", { id: "p99" }, act.p99_ms.toFixed(1)), " ms ", sparkline(p50s)),
        h("div", { class: "metric" }, `in flight ${act.in_flight} · 4xx ${act.errors_4xx} · 5xx ${act.errors_5xx}`,
          ` · up ${fmtSeconds(act.uptime_seconds)}`));
      mount(jobs, list.length
        ? table(["Kind", "Description", "State", "Progress", "Time", "Error"], list.map(jobRow), { id: "jobs-table" })
        : h("p", { class: "muted" }, "No jobs running or finished in the last 10 minutes."));
    } catch (err) {
      mount(live, errorBox(err));
    }
    timer = setTimeout(poll, 2000);
  }
  let timer = null;
  await poll();
  return () => { stopped = true; clearTimeout(timer); };
}
