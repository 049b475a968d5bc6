// The Tracery plant dashboard: Preact + htm, no build step. Data comes from
// /dashboard/api/*, which answers as the CLI's --json does.
import { html, render, useState, useEffect, useCallback, useRef } from "/assets/htm-preact.mjs";
import { Graph } from "/assets/graph.js";

const TOKEN = "tracery.token";

class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.violations = body?.violations || [];
  }
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const token = localStorage.getItem(TOKEN);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, body);
  }
  return response;
}
const getJson = async (path) => (await api(path)).json();

function useRoute() {
  const read = () => {
    const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
    return { path: path || "/", params: new URLSearchParams(query) };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const changed = () => setRoute(read());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}
const go = (path, params) => {
  location.hash = params ? `${path}?${new URLSearchParams(params)}` : path;
};
const searchFor = (id) => go("/search", { id });

/** Polls `path` every `every` ms (once when 0); returns [data, error, reload]. */
function usePolled(path, every = 0) {
  const [state, setState] = useState({ data: null, error: null });
  const load = useCallback(() => {
    if (!path) return;
    getJson(path).then((data) => setState({ data, error: null }), (error) => setState((s) => ({ ...s, error })));
  }, [path]);
  useEffect(() => {
    setState({ data: null, error: null });
    load();
    if (!every) return undefined;
    const timer = setInterval(load, every);
    return () => clearInterval(timer);
  }, [load, every]);
  return [state.data, state.error, load];
}

const fmtSecs = (s) => (s < 90 ? `${s.toFixed(0)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
const pct = (x) => (x == null ? "—" : `${(x * 100).toFixed(x > 0 && x < 0.01 ? 2 : 1)} %`);
const short = (id) => (id || "").replace(/^urn:epc:id:sgln:/, "sgln:");
const shortId = (id) => (id || "").replace(/^urn:epc:(id|class):/, "");

function Problem({ error }) {
  if (!error) return null;
  return html`<div class="notice error" role="alert">
    ${error.status === 401 || error.status === 403 ? "Not allowed: " : ""}${error.message}
    ${error.violations.length > 0 && html`<ul>${error.violations.map((v) => html`<li>${v.field}: ${v.description}</li>`)}</ul>`}
  </div>`;
}

function Id({ id, full }) {
  return id
    ? html`<a class="mono" title=${id} onClick=${() => searchFor(id)}>${full ? id : shortId(id)}</a>`
    : html`<span class="muted">—</span>`;
}

function Floor() {
  const [data, error] = usePolled("/dashboard/api/overview", 2000);
  if (!data) return html`<${Problem} error=${error} /><p class="muted">Waiting for the floor…</p>`;
  // Parts the user's roles may not see are left out of the answer (`omitted`).
  const floor = data.stages !== undefined;
  const quarantine = data.quarantined !== undefined;
  const slowest = floor ? Math.max(1, ...data.bottlenecks.map((s) => s.meanDwellSecs)) : 1;
  return html`
    <${Problem} error=${error} />
    ${data.omitted.length ? html`<p class="muted" data-testid="omitted">Not shown to your roles: ${data.omitted.join(", ")}.</p>` : null}
    <div class="cards">
      ${floor ? html`<div class="card"><div class="value" data-testid="events-seen">${data.eventsSeen.toLocaleString()}</div><div class="label">events seen (live window)</div></div>
      <div class="card"><div class="value">${data.sequence.toLocaleString()}</div><div class="label">store sequence</div></div>
      <div class="card"><div class="value">${data.stages.reduce((n, s) => n + s.workInProgress, 0).toLocaleString()}</div><div class="label">work in progress</div></div>` : null}
      ${quarantine ? html`<div class="card"><div class="value ${data.quarantined ? "bad" : ""}"><a onClick=${() => go("/quarantine")}>${data.quarantined}</a></div><div class="label">in quarantine</div></div>` : null}
    </div>
    <div class="grid">
      ${data.feed ? html`<div class="panel wide"><h2>Live events</h2>
        <table data-testid="feed"><thead><tr><th>time</th><th>event</th><th>bizStep</th><th>read point</th><th class="num">objects</th><th>first object</th></tr></thead>
        <tbody>${data.feed.slice(0, 12).map((e) => html`<tr key=${e.sequence}>
          <td class="mono nowrap">${e.eventTime.replace("T", " ").replace("Z", "")}</td><td>${e.type.replace("Event", "")}</td>
          <td>${e.bizStep}${e.disposition ? html` <span class="muted">(${e.disposition})</span>` : ""}</td>
          <td class="mono nowrap">${short(e.readPoint)}</td><td class="num">${e.objects}</td><td><${Id} id=${e.firstObject} /></td></tr>`)}
        </tbody></table></div>` : null}
      ${floor ? html`<div class="panel"><h2>Stages: work in progress and dwell</h2>
        <table><thead><tr><th>stage (read point)</th><th class="num">WIP</th><th class="num">moved on</th><th class="num">mean dwell</th><th class="num">longest</th></tr></thead>
        <tbody>${data.stages.map((s) => html`<tr><td class="mono nowrap">${short(s.stage)}</td><td class="num">${s.workInProgress}</td>
          <td class="num">${s.visits}</td><td class="num">${fmtSecs(s.meanDwellSecs)}</td><td class="num">${fmtSecs(s.longestDwellSecs)}</td></tr>`)}</tbody></table>
        <h2>Bottlenecks (slowest stages)</h2>
        <table data-testid="bottlenecks"><tbody>${data.bottlenecks.map((s) => html`<tr><td class="mono nowrap">${short(s.stage)}</td>
          <td style="width:40%"><div class="bar"><div style="width:${(100 * s.meanDwellSecs) / slowest}%"></div></div></td>
          <td class="num">${fmtSecs(s.meanDwellSecs)}</td></tr>`)}</tbody></table></div>` : null}
      ${floor || quarantine ? html`<div class="panel"><h2>Quality per line</h2>
        <table data-testid="lines"><thead><tr><th>line (read point)</th><th class="num">events</th><th class="num">inspected</th><th class="num">first-pass yield</th><th class="num">quarantined</th><th class="num">quarantine rate</th></tr></thead>
        <tbody>${data.lines.map((l) => html`<tr><td class="mono nowrap">${short(l.line)}</td><td class="num">${l.events}</td><td class="num">${l.inspected}</td>
          <td class="num ${l.firstPassYield != null && l.firstPassYield < 0.95 ? "bad" : ""}">${pct(l.firstPassYield)}</td>
          <td class="num">${l.quarantined}</td><td class="num ${l.quarantineRate > 0.01 ? "bad" : ""}">${pct(l.quarantineRate)}</td></tr>`)}</tbody></table></div>` : null}
      ${floor ? html`<div class="panel"><h2>Events per bizStep and read point</h2>
        <table><thead><tr><th>bizStep</th><th>read point</th><th class="num">events</th></tr></thead>
        <tbody>${data.counters.map((c) => html`<tr><td>${c.bizStep || html`<span class="muted">—</span>`}</td><td class="mono nowrap">${short(c.readPoint)}</td><td class="num">${c.events}</td></tr>`)}</tbody></table></div>` : null}
    </div>`;
}

function Quarantine({ roles }) {
  const [entries, error, reload] = usePolled("/dashboard/api/quarantine", 5000);
  const [outcome, setOutcome] = useState(null);
  const [drafts, setDrafts] = useState({});
  const edit = (entry) => {
    let text = entry.payload;
    try { text = JSON.stringify(JSON.parse(entry.payload), null, 2); } catch (_) { /* shown as received */ }
    setDrafts({ ...drafts, [entry.id]: text });
  };
  const mayAct = roles.includes("quality");
  const act = async (id, action) => {
    setOutcome(null);
    try {
      let result;
      if (action === "discard") {
        const reason = prompt(`Why discard ${id}?`);
        if (!reason) return;
        result = await (await api(`/dashboard/api/quarantine/${encodeURIComponent(id)}/discard`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason }),
        })).json();
        setOutcome({ ok: true, text: `${id}: discarded` });
      } else {
        const corrected = action === "correct" ? JSON.parse(drafts[id]) : null;
        result = await (await api(`/dashboard/api/quarantine/${encodeURIComponent(id)}/resubmit`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ corrected }),
        })).json();
        setOutcome(result.stored
          ? { ok: true, text: `${id}: stored as ${result.eventID} (sequence ${result.sequence})` }
          : { ok: false, text: `${id}: still invalid — ${result.violations.map((v) => `${v.field}: ${v.description}`).join("; ")}` });
      }
      if (result.stored || result.discarded) {
        const { [id]: _, ...rest } = drafts;
        setDrafts(rest);
      }
    } catch (err) {
      setOutcome({ ok: false, text: err.message });
    }
    reload();
  };
  return html`
    <h2>Quarantine queue</h2>
    <${Problem} error=${error} />
    ${outcome && html`<div class="notice ${outcome.ok ? "" : "error"}" data-testid="outcome">${outcome.text}</div>`}
    ${!mayAct && html`<p class="muted">Resubmitting and discarding need the quality role.</p>`}
    ${entries && entries.length === 0 && html`<p class="muted" data-testid="quarantine-empty">Nothing in quarantine.</p>`}
    ${entries && entries.length > 0 && html`<div class="panel"><table data-testid="quarantine">
      <thead><tr><th>received</th><th>channel</th><th>read point</th><th>why</th><th></th></tr></thead>
      <tbody>${entries.map((e) => html`<tr key=${e.id} data-entry=${e.id}>
        <td class="mono">${e.received.replace("T", " ")}</td><td>${e.channel}</td><td class="mono">${short(e.readPoint || "")}</td>
        <td>${e.violations.map((v) => html`<div><b>${v.code}</b> ${v.field}: ${v.description}</div>`)}
          ${drafts[e.id] == null
            ? html`<details><summary class="muted">payload</summary><pre class="mono">${e.payload}</pre></details>`
            : html`<textarea class="mono" rows="14" data-testid="correction" value=${drafts[e.id]}
                onInput=${(ev) => setDrafts({ ...drafts, [e.id]: ev.target.value })}></textarea>
              <div><button onClick=${() => act(e.id, "correct")}>Resubmit corrected</button>
                ${" "}<button class="secondary" onClick=${() => { const { [e.id]: _, ...rest } = drafts; setDrafts(rest); }}>Cancel</button></div>`}</td>
        <td style="white-space:nowrap">
          <button disabled=${!mayAct} onClick=${() => act(e.id, "resubmit")} title="Validate again as received, once the cause is fixed">Resubmit</button>
          ${" "}<button class="secondary" disabled=${!mayAct || !e.payload} onClick=${() => edit(e)}>Correct…</button>
          ${" "}<button class="danger" disabled=${!mayAct} onClick=${() => act(e.id, "discard")}>Discard</button></td>
      </tr>`)}</tbody></table></div>`}`;
}

function Alerts({ roles }) {
  const [data, error, reload] = usePolled("/dashboard/api/alerts", 5000);
  const [outcome, setOutcome] = useState(null);
  const mayAct = roles.length === 0 || ["operator", "quality", "admin"].some((r) => roles.includes(r));
  const act = async (id, action) => {
    setOutcome(null);
    try {
      const alert = await (await api(`/dashboard/api/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST" })).json();
      setOutcome({ ok: true, text: `${alert.rule}: ${alert.status}` });
    } catch (err) {
      setOutcome({ ok: false, text: err.message });
    }
    reload();
  };
  const alerts = data?.alerts || [];
  return html`
    <h2>Alerts</h2>
    <${Problem} error=${error} />
    ${outcome && html`<div class="notice ${outcome.ok ? "" : "error"}" data-testid="alert-outcome">${outcome.text}</div>`}
    ${data && alerts.length === 0 && html`<p class="muted" data-testid="alerts-empty">No alerts.</p>`}
    ${alerts.length > 0 && html`<div class="panel"><table data-testid="alerts">
      <thead><tr><th>fired</th><th>rule</th><th>status</th><th>what</th><th>cleared</th><th></th></tr></thead>
      <tbody>${alerts.map((a) => html`<tr key=${a.id} data-alert=${a.id}>
        <td class="mono nowrap">${a.firedAt.replace("T", " ")}</td><td>${a.rule}</td>
        <td class=${a.status === "open" ? "bad" : ""}>${a.status}${a.acknowledgedBy ? html`<div class="muted">ack: ${a.acknowledgedBy}</div>` : null}
          ${a.resolvedBy ? html`<div class="muted">resolved: ${a.resolvedBy}</div>` : null}</td>
        <td>${a.detail}</td><td class="mono nowrap">${a.clearedAt ? a.clearedAt.replace("T", " ") : html`<span class="bad">holds</span>`}</td>
        <td style="white-space:nowrap">
          <button disabled=${!mayAct || a.status !== "open"} onClick=${() => act(a.id, "acknowledge")}>Acknowledge</button>
          ${" "}<button class="secondary" disabled=${!mayAct || a.status === "resolved"} onClick=${() => act(a.id, "resolve")}>Resolve</button></td>
      </tr>`)}</tbody></table></div>`}
    ${data?.rules && html`<div class="panel"><h2>Rules</h2><table data-testid="alert-rules">
      <thead><tr><th>rule</th><th>kind</th><th>from</th><th>note</th></tr></thead>
      <tbody>${data.rules.map((r) => html`<tr key=${r.name}><td>${r.name}</td><td>${r.definition?.kind}</td><td>${r.origin}</td>
        <td class=${r.neverMatches ? "bad" : "muted"}>${r.neverMatches ? `never fires: ${r.neverMatches}` : r.definition?.description || ""}</td></tr>`)}</tbody></table></div>`}`;
}

function SearchBox({ initial, onSearch, label = "Trace", placeholder }) {
  const [text, setText] = useState(initial || "");
  useEffect(() => setText(initial || ""), [initial]);
  return html`<form class="search" onSubmit=${(e) => { e.preventDefault(); onSearch(text.trim()); }}>
    <input type="text" name="id" autofocus value=${text} onInput=${(e) => setText(e.target.value)}
      placeholder=${placeholder || "Scan or type an identifier: (01)…(21)…, https://id.gs1.org/…, urn:epc:…"} />
    <button type="submit">${label}</button></form>`;
}

function Search({ id }) {
  const [data, error] = usePolled(id ? `/dashboard/api/lookup?id=${encodeURIComponent(id)}` : null);
  return html`
    <${SearchBox} initial=${id} onSearch=${searchFor} />
    ${id && html`<${Problem} error=${error} />`}
    ${id && !data && !error && html`<p class="muted">Looking up ${id}…</p>`}
    ${data && html`
      <h2>Where ${data.name ? html`${data.name} (<span class="mono">${data.id}</span>)` : html`<span class="mono">${data.id}</span>`} is</h2>
      ${data.where && (data.where.location || data.where.readPoint || data.where.container || data.where.custodian) ? html`<div class="cards" data-testid="where">
          ${[["location", data.where.location], ["read point", data.where.readPoint], ["disposition", data.where.disposition],
             ["container", data.where.container], ["custodian", data.where.custodian], ["last seen", data.where.lastEventTime]]
            .map(([label, value]) => html`<div class="card"><div class="label">${label}</div><div class="mono">${value || "—"}</div></div>`)}
        </div>` : html`<p class="muted">No event places it.</p>`}
      <h2>Genealogy <span class="muted">— came from (left) and went to (right); click a box to follow it</span></h2>
      <div data-testid="graph" style="overflow:auto">
        <${Graph} root=${data.id} backward=${data.backward} forward=${data.forward} onPick=${searchFor} />
      </div>
      ${(data.backward.truncated || data.forward.truncated) && html`<p class="muted">The graph is cut at 300 nodes each way.</p>`}
      <p><a onClick=${() => go("/recall", { id: data.id })}>Recall scope of ${data.id} →</a></p>
      <h2>History</h2>
      <div class="panel"><table data-testid="history"><thead><tr><th>time</th><th>event</th><th>bizStep</th><th>disposition</th><th>read point</th></tr></thead>
      <tbody>${data.history.map((h) => html`<tr><td class="mono">${h.eventTime}</td><td>${h.type}</td><td>${h.bizStep}</td><td>${h.disposition}</td><td class="mono" title=${h.readPoint}>${h.readPointName || short(h.readPoint)}</td></tr>`)}</tbody></table>
      ${data.moreHistory && html`<p class="muted">Showing the first 200 events; <span class="mono">tracery history</span> has them all.</p>`}</div>`}`;
}

function Recall({ id, since }) {
  const query = id ? `id=${encodeURIComponent(id)}${since ? `&since=${encodeURIComponent(since)}` : ""}` : null;
  const [data, error] = usePolled(query ? `/dashboard/api/recall?${query}` : null);
  const download = async () => {
    const blob = await (await api(`/dashboard/api/recall.csv?${query}`)).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "recall-scope.csv";
    link.click();
    URL.revokeObjectURL(link.href);
  };
  const groups = (title, counts) => html`<div class="panel"><h2>${title}</h2><table><tbody>
    ${Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 20).map(([key, n]) => html`<tr><td class="mono">${key || "—"}</td><td class="num">${n}</td></tr>`)}</tbody></table></div>`;
  return html`
    <${SearchBox} initial=${id} label="Recall scope" placeholder="The lot to recall, e.g. urn:epc:class:lgtin:…" onSearch=${(v) => go("/recall", { id: v })} />
    <${Problem} error=${error} />
    ${data && html`
      <div class="cards"><div class="card"><div class="value" data-testid="recall-total">${data.total}</div><div class="label">affected items${data.truncated ? " (truncated)" : ""}</div></div>
        <div class="card"><button onClick=${download} data-testid="csv">Download CSV</button></div></div>
      <div class="grid">${groups("By location", data.byLocation)}${groups("By disposition", data.byDisposition)}${groups("By custodian", data.byCustodian)}${groups("By container", data.byContainer)}</div>
      <h2>Items</h2><div class="panel"><table><thead><tr><th>id</th><th>name</th><th>kind</th><th>container</th><th>location</th><th>disposition</th><th>custodian</th></tr></thead>
      <tbody>${data.items.map((i) => html`<tr><td><${Id} id=${i.id} /></td><td>${i.name}</td><td>${i.kind}</td><td class="mono">${i.container}</td><td class="mono">${i.locationName ? html`${i.locationName} <span class="muted">${short(i.location)}</span>` : i.location}</td><td>${i.disposition}</td><td class="mono">${i.custodianName || i.custodian}</td></tr>`)}</tbody></table>
      ${data.items.length < data.total && html`<p class="muted">The first ${data.items.length} of ${data.total}; the CSV has them all.</p>`}</div>`}`;
}

/** Common-cause analysis: failed units (listed, or selected by a disposition or bizStep)
 *  against the good ones, ranked by how unlikely their sharing is by chance. */
function Analyze() {
  const [form, setForm] = useState({ failed: "", disposition: "non_conformant", bizStep: "", from: "", until: "", product: "", sensorBounds: "" });
  const [state, setState] = useState({ data: null, error: null, running: false });
  const field = (name) => (e) => setForm({ ...form, [name]: e.target.value });
  const run = async (e) => {
    e.preventDefault();
    const lines = (text) => text.split(/\s*\n\s*/).map((s) => s.trim()).filter(Boolean);
    const failed = lines(form.failed);
    const sensorBounds = lines(form.sensorBounds);
    const body = failed.length > 0 ? { failed, sensorBounds } : {
      dispositions: form.disposition ? [form.disposition.trim()] : [],
      bizSteps: form.bizStep ? [form.bizStep.trim()] : [],
      from: form.from || null, until: form.until || null, product: form.product || null, sensorBounds,
    };
    setState({ data: null, error: null, running: true });
    try {
      const response = await api("/dashboard/api/analyze", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      setState({ data: await response.json(), error: null, running: false });
    } catch (error) {
      setState({ data: null, error, running: false });
    }
  };
  const { data, error, running } = state;
  const followable = (kind) => ["lot", "part", "supplier"].includes(kind);
  return html`
    <form class="panel analyze" onSubmit=${run}>
      <h2>Which units failed?</h2>
      <label>Failed units, one per line (as scanned)<textarea name="failed" rows="4" value=${form.failed} onInput=${field("failed")}
        placeholder="(01)04012345111118(21)1001, https://id.gs1.org/01/…, urn:epc:id:sgtin:… (one per line)"></textarea></label>
      <p class="muted">…or, with the list empty, the units that events name:</p>
      <div class="row">
        <label>disposition<input type="text" name="disposition" value=${form.disposition} onInput=${field("disposition")} placeholder="non_conformant, damaged, returned" /></label>
        <label>bizStep<input type="text" name="bizStep" value=${form.bizStep} onInput=${field("bizStep")} placeholder="inspecting" /></label>
        <label>from<input type="text" name="from" value=${form.from} onInput=${field("from")} placeholder="2026-11-01T00:00:00Z" /></label>
        <label>until<input type="text" name="until" value=${form.until} onInput=${field("until")} placeholder="now" /></label>
        <label>product<input type="text" name="product" value=${form.product} onInput=${field("product")} placeholder="(01)04012345111118" /></label>
      </div>
      <label>Sensor bounds, one per line: a reading beyond them is something units can share<textarea name="sensorBounds" rows="2" value=${form.sensorBounds} onInput=${field("sensorBounds")}
        placeholder="Temperature=2..8,CEL (type=min..max, either end may be left out, then ,unit)"></textarea></label>
      <button type="submit" disabled=${running}>${running ? "Analysing…" : "Analyse"}</button>
    </form>
    <${Problem} error=${error} />
    ${data && html`
      <div class="cards"><div class="card"><div class="value">${data.failedUnits}</div><div class="label">failed units</div></div>
        <div class="card"><div class="value">${data.baselineUnits}</div><div class="label">good units compared</div></div>
        <div class="card"><div class="value">${data.candidatesTested}</div><div class="label">attribute values tested</div></div></div>
      ${data.refused.length > 0 && html`<div class="notice" data-testid="refused"><b>Left out:</b><ul>${data.refused.map((r) => html`<li><span class="mono">${r.field}</span> <span class="mono">${r.written}</span>: ${r.reason}</li>`)}</ul></div>`}
      ${data.verdict === "inconclusive" ? html`<div class="notice" data-testid="inconclusive">Inconclusive: ${data.reason}</div>` : html`
        <h2>What the failed units share <span class="muted">— ranked by q (false discovery rate), then relative risk; lots, parts and suppliers lead to their genealogy</span></h2>
        <div class="panel"><table data-testid="causes"><thead><tr><th>group</th><th>kind</th><th>value</th><th class="num">failed with it</th><th class="num">good with it</th><th class="num">q</th><th class="num">relative risk (95 %)</th><th>first seen</th><th>evidence</th></tr></thead>
        <tbody>${data.candidates.map((c) => html`<tr class=${c.indistinguishable ? "grouped" : ""}>
          <td>${c.group}${c.indistinguishable ? html` <span class="muted" title="held by the same units: the data cannot tell these apart">same units</span>` : ""}</td>
          <td>${c.kind}</td>
          <td class="mono">${followable(c.kind) ? html`<a title=${c.value} onClick=${() => searchFor(c.value)}>${c.value}</a>` : c.value}</td>
          <td class="num">${c.failedWith} of ${c.failedWith + c.failedWithout}</td>
          <td class="num">${c.baselineWith} of ${c.baselineWith + c.baselineWithout}</td>
          <td class="num">${c.qValue.toExponential(1)}</td>
          <td class="num">${c.relativeRisk.toFixed(1)} (${c.relativeRiskLow.toFixed(1)}–${c.relativeRiskHigh.toFixed(1)})</td>
          <td class="mono">${c.firstSeen}</td>
          <td><details><summary>${c.failedUnitsWith.length} failed, ${c.baselineUnitsWith.length} good</summary>
            <div class="mono small">${c.failedUnitsWith.slice(0, 50).map((u) => html`<div><${Id} id=${u} /></div>`)}
            ${c.baselineUnitsWith.length > 0 && html`<div class="muted">good:</div>`}${c.baselineUnitsWith.map((u) => html`<div><${Id} id=${u} /></div>`)}</div></details></td>
        </tr>`)}</tbody></table></div>`}`}`;
}

/** A uPlot chart (the vendored global `uPlot`) of `data`, drawn again when it changes. */
function Chart({ title, series, data, testid, bars = false, xValues = null, yFormat = (v) => v, yRange = null, height = 220 }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || !window.uPlot) return undefined;
    const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
    const options = {
      width: Math.max(320, box.current.clientWidth), height,
      scales: { x: xValues ? { time: false, range: [-0.5, xValues.length - 0.5] } : { time: true }, ...(yRange ? { y: { range: yRange } } : {}) },
      series: [{}, ...series.map((label, i) => ({
        label, stroke: palette[i % palette.length], width: 2, spanGaps: false,
        ...(bars ? { fill: palette[i % palette.length] + "88", paths: uPlot.paths.bars({ size: [0.6, 60] }) } : {}),
      }))],
      axes: [
        xValues ? { values: (_, ticks) => ticks.map((t) => xValues[t] ?? "") } : {},
        { values: (_, ticks) => ticks.map(yFormat) },
      ],
    };
    const chart = new uPlot(options, data, box.current);
    return () => chart.destroy();
  }, [data]);
  return html`<div class="panel chart" data-testid=${testid}><h2>${title}</h2><div ref=${box}></div></div>`;
}

const PERIODS = [["24 hours", 1], ["7 days", 7], ["30 days", 30]];
const formatSeconds = (s) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${Math.round(s)} s`);

/** Trends per line over a period: events, first-pass yield and quarantine rate per hour,
 *  and dwell time per stage, from the rollup the projection keeps. */
function Trends({ from: fromParam, until: untilParam }) {
  const nextHour = () => new Date(Math.ceil(Date.now() / 3600e3) * 3600e3);
  const until = untilParam ? new Date(untilParam) : nextHour();
  const from = fromParam ? new Date(fromParam) : new Date(until.getTime() - 7 * 86400e3);
  const days = Math.round((until - from) / 86400e3);
  const last = (n) => { const end = nextHour(); go("/trends", { from: new Date(end - n * 86400e3).toISOString(), until: end.toISOString() }); };
  const [form, setForm] = useState({ from: from.toISOString(), until: until.toISOString() });
  const [data, error] = usePolled(`/dashboard/api/trends?from=${from.toISOString()}&until=${until.toISOString()}`);
  const lines = data?.lines || [];
  const perLine = (field) => [data.hours, ...lines.map((l) => l[field])];
  const percent = (v) => (v == null ? "" : `${Math.round(v * 100)} %`);
  const bucketNames = (bounds) => {
    const label = (s) => (s >= 86400 ? `${s / 86400} d` : s >= 3600 ? `${s / 3600} h` : `${s / 60} min`);
    return [...bounds.map((b, i) => (i === 0 ? `< ${label(b)}` : `${label(bounds[i - 1])}–${label(b)}`)), `≥ ${label(bounds[bounds.length - 1])}`];
  };
  const stages = data?.stages || [];
  return html`
    <form class="row periods" onSubmit=${(e) => { e.preventDefault(); go("/trends", form); }}>
      ${PERIODS.map(([name, n]) => html`<button type="button" class=${!fromParam && n === days ? "active" : ""} onClick=${() => last(n)}>Last ${name}</button>`)}
      <label>from<input type="text" name="from" value=${form.from} onInput=${(e) => setForm({ ...form, from: e.target.value })} /></label>
      <label>until<input type="text" name="until" value=${form.until} onInput=${(e) => setForm({ ...form, until: e.target.value })} /></label>
      <button type="submit">Show</button>
    </form>
    <${Problem} error=${error} />
    ${data && html`
      ${lines.length === 0 && html`<p class="muted">No events in this period.</p>`}
      ${lines.length > 0 && html`
        <${Chart} title="Events per hour, by line" testid="chart-events" series=${lines.map((l) => l.line)} data=${perLine("events")} />
        <${Chart} title="First-pass yield, by line" testid="chart-yield" series=${lines.map((l) => l.line)} data=${perLine("firstPassYield")} yFormat=${percent} yRange=${[0, 1]} />
        <${Chart} title="Quarantine rate, by line" testid="chart-quarantine" series=${lines.map((l) => l.line)} data=${perLine("quarantineRate")} yFormat=${percent} yRange=${[0, 1]} />`}
      ${stages.length > 0 && html`
        <h2>Dwell time per stage <span class="muted">— identifiers that left it in the period, by how long they had stayed</span></h2>
        <div class="grid" data-testid="dwell">${stages.map((stage) => html`
          <${Chart} title=${`${stage.stage} · mean ${formatSeconds(stage.meanSeconds)}`} testid="chart-dwell" bars=${true} height=${160}
            xValues=${bucketNames(data.dwellBounds)} series=${["identifiers"]}
            data=${[stage.visits.map((_, i) => i), stage.visits]} />`)}</div>`}
      ${data.omitted.length > 0 && html`<p class="muted">Not shown to you: ${data.omitted.join(", ")}.</p>`}`}`;
}

function Integration() {
  const [data, error] = usePolled("/dashboard/api/integration", 5000);
  const stateClass = (s) => (s === "succeeded" ? "good" : s === "running" ? "" : "bad");
  return html`<${Problem} error=${error} />${data && html`
    <h2>Last sync per connector</h2>
    <div class="panel"><table data-testid="connectors"><thead><tr><th>connector</th><th>state</th><th>started</th><th>ended</th><th class="num">fetched</th><th class="num">failed</th></tr></thead>
      <tbody>${Object.entries(data.connectors).map(([name, r]) => html`<tr><td>${name}</td><td class=${stateClass(r.state)}>${r.state}</td><td class="mono">${r.started}</td><td class="mono">${r.ended}</td><td class="num">${r.fetched}</td><td class="num">${r.failed}</td></tr>`)}</tbody></table>
      ${Object.keys(data.connectors).length === 0 && html`<p class="muted">No sync has run.</p>`}</div>
    <h2>Errors of recent runs</h2>
    <div class="panel">${data.runs.filter((r) => r.errors.length).length === 0 ? html`<p class="muted">None.</p>` :
      data.runs.filter((r) => r.errors.length).map((r) => html`<div><b>${r.connector || "(all)"}</b> <span class="mono">${r.started}</span><ul>${r.errors.slice(0, 10).map((e) => html`<li class="mono">${e}</li>`)}</ul></div>`)}</div>
    <h2>Dead-letter post-backs</h2>
    <div class="panel">${data.deadLetterPostings.length === 0 ? html`<p class="muted">None.</p>` : html`<table><thead><tr><th>posting</th><th>connector</th><th>order</th><th class="num">attempts</th><th>last error</th></tr></thead>
      <tbody>${data.deadLetterPostings.map((p) => html`<tr><td class="mono">${p.id}</td><td>${p.connector}</td><td>${p.order}</td><td class="num">${p.attempts}</td><td class="mono">${p.error}</td></tr>`)}</tbody></table>`}</div>`}`;
}

function SignIn({ onDone }) {
  const [token, setToken] = useState("");
  return html`<div class="panel" style="max-width:640px"><h2>Sign in</h2>
    <p>This suite checks callers. Paste your bearer token (kept in this browser only).</p>
    <form class="search" onSubmit=${(e) => { e.preventDefault(); localStorage.setItem(TOKEN, token.trim()); onDone(); }}>
      <input type="text" value=${token} onInput=${(e) => setToken(e.target.value)} placeholder="token" /><button>Sign in</button></form></div>`;
}

const PAGES = [["/", "Floor"], ["/quarantine", "Quarantine"], ["/alerts", "Alerts"], ["/search", "Search"], ["/recall", "Recall"], ["/analyze", "Analysis"], ["/trends", "Trends"], ["/integration", "Integration"]];

function App() {
  const route = useRoute();
  const [session, setSession] = useState(null);
  const [signIn, setSignIn] = useState(false);
  const loadSession = useCallback(() => {
    getJson("/dashboard/api/session").then((s) => { setSession(s); setSignIn(false); },
      (err) => { if (err.status === 401) setSignIn(true); });
  }, []);
  useEffect(loadSession, [loadSession]);
  const roles = session?.roles || [];
  let page;
  if (signIn) page = html`<${SignIn} onDone=${loadSession} />`;
  else if (route.path === "/quarantine") page = html`<${Quarantine} roles=${roles} />`;
  else if (route.path === "/alerts") page = html`<${Alerts} roles=${roles} />`;
  else if (route.path === "/search") page = html`<${Search} id=${route.params.get("id")} />`;
  else if (route.path === "/recall") page = html`<${Recall} id=${route.params.get("id")} since=${route.params.get("since")} />`;
  else if (route.path === "/analyze") page = html`<${Analyze} />`;
  else if (route.path === "/trends") page = html`<${Trends} from=${route.params.get("from")} until=${route.params.get("until")} />`;
  else if (route.path === "/integration") page = html`<${Integration} />`;
  else page = html`<${Floor} />`;
  return html`
    <header><h1>Tracery</h1>
      <nav>${PAGES.map(([path, title]) => html`<a href="#${path}" class=${route.path === path ? "active" : ""}>${title}</a>`)}</nav>
      <span class="who">${session ? `${session.subject || "anonymous"} · ${roles.join(", ")}` : ""}
        ${localStorage.getItem(TOKEN) && html` · <a onClick=${() => { localStorage.removeItem(TOKEN); location.reload(); }}>sign out</a>`}</span>
    </header>
    <main>${page}</main>`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);
