// otel-lab trace explorer: a single page over Jaeger's HTTP API (/api/...). Routes as
// Jaeger's UI: /search, /trace/{id}, /dependencies. No framework, no build step.
"use strict";
(() => {
  const view = document.getElementById("view");
  const PALETTE = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#b35c00", "#0b7285",
    "#c2255c", "#5c7f0d", "#364fc7", "#8f3b1b", "#087f5b", "#5f3dc4"];
  const LOOKBACKS = [["5m", "Last 5 minutes"], ["15m", "Last 15 minutes"], ["1h", "Last hour"],
    ["2h", "Last 2 hours"], ["6h", "Last 6 hours"], ["12h", "Last 12 hours"],
    ["24h", "Last 24 hours"], ["2d", "Last 2 days"], ["7d", "Last 7 days"]];
  const LOOKBACK_MS = { m: 60e3, h: 3600e3, d: 86400e3 };

  // A service keeps its colour on every page: the first colour free from its name's hash,
  // remembered in this browser so two services seen together never share one.
  const colors = new Map(JSON.parse(localStorage.getItem("otel-lab.colors") || "[]"));
  function colorOf(service) {
    if (colors.has(service)) return colors.get(service);
    let h = 2166136261;
    for (const c of service) h = Math.imul(h ^ c.codePointAt(0), 16777619) >>> 0;
    const used = new Set(colors.values());
    let i = h % PALETTE.length;
    for (let k = 0; k < PALETTE.length && used.has(PALETTE[i]); k++) i = (i + 1) % PALETTE.length;
    colors.set(service, PALETTE[i]);
    try { localStorage.setItem("otel-lab.colors", JSON.stringify([...colors])); } catch (_) { /* private mode */ }
    return PALETTE[i];
  }
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) =>
    ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  function fmtDur(us) {
    if (us < 1000) return `${Math.round(us)}µs`;
    if (us < 1e6) return `${+(us / 1000).toFixed(us < 1e4 ? 2 : 1)}ms`;
    return `${+(us / 1e6).toFixed(2)}s`;
  }
  const fmtTime = (us) => new Date(us / 1000).toLocaleString();
  const lookbackMs = (lb) => (parseFloat(lb) || 1) * (LOOKBACK_MS[lb.slice(-1)] || 3600e3);

  async function api(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await r.json(); } catch (_) { /* a non-JSON error page */ }
    if (!r.ok) {
      const msg = body && body.errors && body.errors[0] ? body.errors[0].msg : `HTTP ${r.status}`;
      const e = new Error(msg);
      e.status = r.status;
      throw e;
    }
    return body;
  }

  // ---- routing ---------------------------------------------------------------------
  function navigate(url) {
    history.pushState(null, "", url);
    route();
  }
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-link]");
    if (!a || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", route);
  document.getElementById("lookup").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = document.getElementById("lookup-id").value.trim().toLowerCase();
    if (id) navigate(`/trace/${encodeURIComponent(id)}`);
  });

  function route() {
    const p = location.pathname;
    document.getElementById("nav-search").classList.toggle("active", !/^\/(trace|dependencies|monitor|logs)/.test(p));
    document.getElementById("nav-logs").classList.toggle("active", p.startsWith("/logs"));
    document.getElementById("nav-deps").classList.toggle("active", p.startsWith("/dependencies"));
    document.getElementById("nav-monitor").classList.toggle("active", p.startsWith("/monitor"));
    const cmp = p.match(/^\/trace\/([^/.]+)\.\.\.([^/.]+)\/?$/);
    const m = p.match(/^\/trace\/([^/]+)\/?$/);
    window.scrollTo(0, 0);
    if (cmp) return showCompare(decodeURIComponent(cmp[1]).toLowerCase(), decodeURIComponent(cmp[2]).toLowerCase());
    if (m) return showTrace(decodeURIComponent(m[1]).toLowerCase());
    if (p.startsWith("/dependencies")) return showDependencies();
    if (p.startsWith("/monitor")) return showMonitor();
    if (p.startsWith("/logs")) return showLogs();
    return showSearch();
  }

  // ---- trace model -------------------------------------------------------------------
  const tagValue = (tags, key) => { const t = tags.find((x) => x.key === key); return t ? t.value : undefined; };
  const isError = (span) => { const v = tagValue(span.tags, "error"); return v === true || v === "true"; };

  function summarize(trace) {
    const spans = trace.spans;
    const ids = new Set(spans.map((s) => s.spanID));
    const parentOf = (s) => {
      const r = s.references.find((r) => r.refType === "CHILD_OF" && r.traceID === trace.traceID);
      return r && ids.has(r.spanID) ? r.spanID : null;
    };
    let start = Infinity, end = 0, errors = 0;
    const services = new Map();
    for (const s of spans) {
      start = Math.min(start, s.startTime);
      end = Math.max(end, s.startTime + s.duration);
      if (isError(s)) errors++;
      const svc = trace.processes[s.processID].serviceName;
      services.set(svc, (services.get(svc) || 0) + 1);
    }
    const roots = spans.filter((s) => !parentOf(s)).sort((a, b) => a.startTime - b.startTime);
    const root = roots.find((s) => s.references.length === 0) || roots[0] || spans[0];
    return {
      id: trace.traceID, trace, start, duration: end - start, errors, services, root, parentOf,
      rootService: trace.processes[root.processID].serviceName,
    };
  }

  // ---- search ------------------------------------------------------------------------
  async function showSearch() {
    const q = new URLSearchParams(location.search);
    view.innerHTML = `<div class="search">
      <form id="search-form" autocomplete="off">
        <label>Service <select id="service" name="service" required></select></label>
        <label>Operation <select id="operation" name="operation"><option value="">all</option></select></label>
        <label>Tags <small>e.g. error=true http.route=/orders</small>
          <input id="tags" name="tags" spellcheck="false" placeholder="key=value …"></label>
        <label>Lookback <select id="lookback" name="lookback">${LOOKBACKS.map(([v, t]) =>
          `<option value="${v}">${t}</option>`).join("")}</select></label>
        <div class="row2">
          <label>Min duration <input id="min-duration" name="minDuration" placeholder="100ms"></label>
          <label>Max duration <input id="max-duration" name="maxDuration" placeholder="1.5s"></label>
        </div>
        <label>Limit results <input id="limit" name="limit" type="number" min="1" max="1500" value="20"></label>
        <button id="search-btn" type="submit">Find traces</button>
      </form>
      <section id="results"></section>
    </div>`;
    const form = document.getElementById("search-form");
    const results = document.getElementById("results");
    const svcSel = document.getElementById("service");
    const opSel = document.getElementById("operation");
    for (const [name, id] of [["tags", "tags"], ["minDuration", "min-duration"], ["maxDuration", "max-duration"], ["limit", "limit"]]) {
      if (q.get(name)) document.getElementById(id).value = q.get(name);
    }
    document.getElementById("lookback").value = q.get("lookback") || "1h";

    let services = [];
    try {
      services = (await api("/api/services")).data || [];
    } catch (e) {
      results.innerHTML = `<div class="alert">Cannot list services: ${esc(e.message)}</div>`;
      return;
    }
    if (!services.length) {
      svcSel.innerHTML = `<option value="">no services yet</option>`;
      results.innerHTML = `<div class="empty">No traces received yet. Start the lab and send some
        traffic (<span class="mono">make traffic</span>), then reload.</div>`;
      return;
    }
    svcSel.innerHTML = services.map((s) => `<option value="${esc(s)}">${esc(s)}</option>`).join("");
    const wanted = q.get("service") || localStorage.getItem("otel-lab.service");
    if (wanted && services.includes(wanted)) svcSel.value = wanted;

    async function loadOperations(selected) {
      opSel.innerHTML = `<option value="">all</option>`;
      try {
        const ops = (await api(`/api/services/${encodeURIComponent(svcSel.value)}/operations`)).data || [];
        opSel.innerHTML += ops.map((o) => `<option value="${esc(o)}">${esc(o)}</option>`).join("");
        if (selected && ops.includes(selected)) opSel.value = selected;
      } catch (_) { /* the search still works without the list */ }
    }
    svcSel.addEventListener("change", () => loadOperations(""));
    await loadOperations(q.get("operation"));

    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const [k, v] of new FormData(form)) if (String(v).trim()) p.set(k, String(v).trim());
      localStorage.setItem("otel-lab.service", svcSel.value);
      history.pushState(null, "", `/search?${p}`);
      runSearch(p, results);
    });
    if (q.get("service")) runSearch(q, results);
    else results.innerHTML = `<div class="empty">Pick a service and press <b>Find traces</b>.</div>`;
  }

  async function runSearch(params, results) {
    const p = new URLSearchParams();
    for (const k of ["service", "operation", "tags", "minDuration", "maxDuration", "limit"]) {
      if (params.get(k)) p.set(k, params.get(k));
    }
    const end = Date.now() * 1000;
    p.set("end", String(end));
    p.set("start", String(end - lookbackMs(params.get("lookback") || "1h") * 1000));
    if (!p.get("limit")) p.set("limit", "20");
    results.innerHTML = `<div class="empty">Searching…</div>`;
    let data;
    try {
      data = (await api(`/api/traces?${p}`)).data || [];
    } catch (e) {
      results.innerHTML = `<div class="alert">${esc(e.message)}</div>`;
      return;
    }
    const traces = data.map(summarize);
    [...new Set(traces.flatMap((t) => [...t.services.keys()]))].sort().forEach(colorOf);
    if (!traces.length) {
      results.innerHTML = `<div class="empty">No traces match. Widen the lookback or drop a filter.</div>`;
      return;
    }
    results.innerHTML = `<div class="summary"><h2>${traces.length} trace${traces.length === 1 ? "" : "s"}</h2>
      <select id="sort" aria-label="Sort"><option value="recent">Most recent</option>
      <option value="longest">Longest first</option><option value="spans">Most spans</option>
      <option value="errors">Most errors</option></select></div>
      <button class="plain" id="compare-btn" type="button" disabled>Compare the two picked</button>
      ${scatter(traces)}<ul class="results" id="result-list"></ul>`;
    const list = document.getElementById("result-list");
    const sorters = {
      recent: (a, b) => b.start - a.start,
      longest: (a, b) => b.duration - a.duration,
      spans: (a, b) => b.trace.spans.length - a.trace.spans.length,
      errors: (a, b) => b.errors - a.errors || b.start - a.start,
    };
    const draw = () => {
      const sorted = [...traces].sort(sorters[document.getElementById("sort").value]);
      const maxDur = Math.max(...traces.map((t) => t.duration), 1);
      list.innerHTML = sorted.map((t) => resultItem(t, maxDur)).join("");
    };
    document.getElementById("sort").addEventListener("change", draw);
    draw();
    const picked = [];
    const compareBtn = document.getElementById("compare-btn");
    list.addEventListener("change", (e) => {
      const box = e.target.closest("input[data-compare]");
      if (!box) return;
      const id = box.dataset.compare;
      const at = picked.indexOf(id);
      if (box.checked && at < 0) picked.push(id);
      if (!box.checked && at >= 0) picked.splice(at, 1);
      // Two at most: picking a third drops the oldest pick.
      while (picked.length > 2) {
        const dropped = picked.shift();
        const old = list.querySelector(`input[data-compare="${dropped}"]`);
        if (old) old.checked = false;
      }
      compareBtn.disabled = picked.length !== 2;
    });
    compareBtn.addEventListener("click", () => navigate(`/trace/${picked[0]}...${picked[1]}`));
    results.querySelectorAll(".scatter circle").forEach((c) =>
      c.addEventListener("click", () => navigate(`/trace/${c.dataset.traceId}`)));
  }

  function resultItem(t, maxDur) {
    const chips = [...t.services].sort((a, b) => b[1] - a[1]).map(([svc, n]) =>
      `<span class="chip" style="background:${colorOf(svc)}">${esc(svc)} (${n})</span>`).join("");
    return `<li class="result-item"><label class="cmp-pick" title="pick two traces to compare"><input type="checkbox" data-compare="${t.id}"> compare</label>
      <a class="result${t.errors ? " has-error" : ""}" href="/trace/${t.id}" data-link data-trace-id="${t.id}">
      <span class="title">${esc(t.rootService)}: ${esc(t.root.operationName)}</span>
      <span class="dur">${fmtDur(t.duration)}</span>
      <span class="meta">${t.trace.spans.length} span${t.trace.spans.length === 1 ? "" : "s"}${t.errors ? ` · <span class="err">${t.errors} error${t.errors > 1 ? "s" : ""}</span>` : ""}
        · <span class="mono">${t.id.slice(0, 12)}</span></span>
      <span class="when">${fmtTime(t.start)}</span>
      <span class="durbar"><i style="width:${Math.max(0.5, (100 * t.duration) / maxDur)}%"></i></span>
      <span class="chips">${chips}</span></a></li>`;
  }

  // Duration over time: one dot per trace, bigger with more spans, red with errors.
  function scatter(traces) {
    const W = 1000, H = 190, L = 70, R = 24, T = 18, B = 30;
    const t0 = Math.min(...traces.map((t) => t.start));
    const t1 = Math.max(...traces.map((t) => t.start));
    const dMax = Math.max(...traces.map((t) => t.duration), 1);
    const x = (t) => (t1 === t0 ? (L + W - R) / 2 : L + 16 + ((t - t0) / (t1 - t0)) * (W - L - R - 32));
    const y = (d) => H - B - 6 - (d / dMax) * (H - T - B - 6);
    const dots = traces.map((t) => {
      const r = Math.min(14, 4 + Math.sqrt(t.trace.spans.length));
      return `<circle cx="${x(t.start).toFixed(1)}" cy="${y(t.duration).toFixed(1)}" r="${r.toFixed(1)}"
        fill="${t.errors ? "#c92a2a" : "#1f5fbf"}" data-trace-id="${t.id}"><title>${esc(t.rootService)}: ${esc(t.root.operationName)}
${fmtDur(t.duration)} · ${t.trace.spans.length} spans</title></circle>`;
    }).join("");
    const time = (us) => new Date(us / 1000).toLocaleTimeString();
    return `<svg class="scatter" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="Trace durations over time">
      <line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/>
      <line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>
      <text x="${L - 6}" y="${T + 10}" text-anchor="end">${fmtDur(dMax)}</text>
      <text x="${L - 6}" y="${H - B}" text-anchor="end">0</text>
      <text x="${L}" y="${H - 8}">${time(t0)}</text>
      <text x="${W - R}" y="${H - 8}" text-anchor="end">${time(t1)}</text>
      ${dots}</svg>`;
  }

  // ---- compare two traces ----------------------------------------------------------------
  // Each span is placed by its path from the root ("service: operation" at every level);
  // the two traces are compared path by path: present in one only, slower or faster in
  // total (beyond 10% and 1 ms), or the same path a different number of times.
  function pathStats(trace) {
    const t = summarize(trace);
    const byId = new Map(trace.spans.map((s) => [s.spanID, s]));
    const label = (s) => `${trace.processes[s.processID].serviceName}: ${s.operationName}`;
    const pathOf = new Map();
    const path = (s) => {
      if (pathOf.has(s.spanID)) return pathOf.get(s.spanID);
      const parent = t.parentOf(s);
      const p = parent && byId.has(parent) ? [...path(byId.get(parent)), label(s)] : [label(s)];
      pathOf.set(s.spanID, p);
      return p;
    };
    const stats = new Map();
    for (const s of [...trace.spans].sort((a, b) => a.startTime - b.startTime)) {
      const p = path(s), key = p.join(" \u203a ");
      const e = stats.get(key) || { path: p, count: 0, total: 0 };
      e.count += 1; e.total += s.duration;
      stats.set(key, e);
    }
    return { t, stats };
  }

  function compareStatus(a, b) {
    if (!a) return "added";
    if (!b) return "removed";
    const d = b.total - a.total;
    if (Math.abs(d) >= 1000 && Math.abs(d) > 0.1 * a.total) return d > 0 ? "slower" : "faster";
    return a.count !== b.count ? "count" : "same";
  }

  async function showCompare(idA, idB) {
    view.innerHTML = `<div class="empty">Loading traces…</div>`;
    let a, b;
    try {
      [a, b] = await Promise.all([idA, idB].map(async (id) => (await api(`/api/traces/${encodeURIComponent(id)}`)).data[0]));
    } catch (e) {
      view.innerHTML = `<div class="alert">${e.status === 404 ? "One of the two traces was not found (evicted, or not arrived yet)." : esc(e.message)}</div>
        <p><a href="/search" data-link>Back to search</a></p>`;
      return;
    }
    const A = pathStats(a), B = pathStats(b);
    // A's paths in A's order, then what only B has, each under its parent path.
    const keys = [...A.stats.keys()];
    for (const k of B.stats.keys()) if (!A.stats.has(k)) keys.push(k);
    const children = new Map();
    const roots = [];
    for (const k of keys) {
      const e = A.stats.get(k) || B.stats.get(k);
      const parent = e.path.slice(0, -1).join(" \u203a ");
      if (e.path.length > 1 && keys.includes(parent)) { if (!children.has(parent)) children.set(parent, []); children.get(parent).push(k); } else roots.push(k);
    }
    const ordered = [];
    const walk = (k) => { ordered.push(k); (children.get(k) || []).forEach(walk); };
    roots.forEach(walk);
    const cell = (e) => (e ? `${fmtDur(e.total)}${e.count > 1 ? ` <small>×${e.count}</small>` : ""}` : "—");
    const counts = { added: 0, removed: 0, slower: 0, faster: 0, count: 0, same: 0 };
    const rowsHtml = ordered.map((k) => {
      const ea = A.stats.get(k), eb = B.stats.get(k), st = compareStatus(ea, eb);
      counts[st] += 1;
      const e = ea || eb;
      const change = ea && eb ? `${eb.total >= ea.total ? "+" : "−"}${fmtDur(Math.abs(eb.total - ea.total))}${ea.count !== eb.count ? ` · ×${ea.count} → ×${eb.count}` : ""}` : st;
      return `<tr class="cmp-row cmp-${st}" data-status="${st}" data-path="${esc(k)}">
        <td style="padding-left:${0.4 + (e.path.length - 1) * 1.1}rem"><span class="svc-mark" style="background:${colorOf(e.path[e.path.length - 1].split(": ")[0])}"></span>${esc(e.path[e.path.length - 1])}</td>
        <td>${cell(ea)}</td><td>${cell(eb)}</td><td class="cmp-change">${esc(change)}</td></tr>`;
    }).join("");
    const head = (x, id) => `<a href="/trace/${id}" data-link><b>${esc(x.t.rootService)}: ${esc(x.t.root.operationName)}</b></a>
      <span class="mono">${id.slice(0, 12)}</span> ${fmtDur(x.t.duration)}, ${x.t.trace.spans.length} spans`;
    view.innerHTML = `<div class="trace-head"><h1>Compare two traces</h1>
        <span class="stat">A ${head(A, a.traceID)}</span><span class="stat">B ${head(B, b.traceID)}</span></div>
      <p class="cmp-summary">${["added", "removed", "slower", "faster", "count"].map((k) => `<span class="cmp-key cmp-${k}">${counts[k]} ${k === "count" ? "repeated differently" : k}</span>`).join(" ")}
        <span class="muted">(by path from the root; slower/faster beyond 10% and 1 ms)</span></p>
      <table class="cmp-table"><thead><tr><th>Service: operation</th><th>A</th><th>B</th><th>B − A</th></tr></thead><tbody>${rowsHtml}</tbody></table>`;
  }

  // ---- trace view ----------------------------------------------------------------------
  async function showTrace(id) {
    view.innerHTML = `<div class="empty">Loading trace <span class="mono">${esc(id)}</span>…</div>`;
    let trace;
    try {
      trace = (await api(`/api/traces/${encodeURIComponent(id)}`)).data[0];
    } catch (e) {
      view.innerHTML = `<div class="alert">${e.status === 404
        ? `Trace <span class="mono">${esc(id)}</span> was not found (it may have been evicted, or not arrived yet).`
        : esc(e.message)}</div><p><a href="/search" data-link>Back to search</a></p>`;
      return;
    }
    // Span links both ways (the lab's own API): who this trace links to, who links to it.
    let links = null;
    try { links = (await api(`/api/lab/links/${encodeURIComponent(id)}`)).data; } catch (_) { links = null; }
    const t = summarize(trace);
    t.links = links;
    renderTrace(t);
  }

  // "Links to" and "Linked from": each linked trace named by its root service and operation,
  // one click away.
  function linksPanel(links) {
    if (!links || (!links.links.length && !links.linkedFrom.length)) return "";
    const short = (id) => `<span class="mono">${esc(id.slice(0, 12))}</span>`;
    const out = links.links.filter((l) => l.traceID !== links.traceID).map((l) => l.held
      ? `<li class="link-to"><a href="/trace/${l.traceID}" data-link class="linked-trace"><b>${esc(l.rootService)}: ${esc(l.rootOperation)}</b></a>
          ${short(l.traceID)}, at <b>${esc(l.targetService || "?")}: ${esc(l.targetOperation || "?")}</b></li>`
      : `<li class="link-to"><a href="/trace/${l.traceID}" data-link class="linked-trace">${short(l.traceID)}</a> <span class="muted">(not held: evicted, or not arrived yet)</span></li>`).join("");
    const from = links.linkedFrom.map((l) => `<li class="link-from"><a href="/trace/${l.traceID}" data-link class="linking-trace"><b>${esc(l.rootService)}: ${esc(l.rootOperation)}</b></a>
        ${short(l.traceID)}, from ${l.spans.map((s) => `<b>${esc(s.service)}: ${esc(s.operation)}</b>`).join(", ")}</li>`).join("");
    return `<div class="trace-links" id="trace-links">
      ${out ? `<div><h4>Links to</h4><ul>${out}</ul></div>` : ""}
      ${from ? `<div><h4>Linked from</h4><ul>${from}</ul></div>` : ""}</div>`;
  }

  // Time a span spends on its own: its duration minus the union of its children's.
  function selfTime(span, children) {
    const s0 = span.startTime, s1 = span.startTime + span.duration;
    const iv = children.map((c) => [Math.max(s0, c.startTime), Math.min(s1, c.startTime + c.duration)])
      .filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
    let covered = 0, cur = null;
    for (const [a, b] of iv) {
      if (!cur || a > cur[1]) { if (cur) covered += cur[1] - cur[0]; cur = [a, b]; } else cur[1] = Math.max(cur[1], b);
    }
    if (cur) covered += cur[1] - cur[0];
    return Math.max(0, span.duration - covered);
  }

  // The critical path, walked as Jaeger's UI walks it: from the root's end, step into the
  // child that finished last before the point reached, record the stretch of the current
  // span after that child, and when a span has no such child, record it back to its start
  // and return to its parent at that start. Children are clipped to their parent first.
  // The result: [spanID, from, to] sections, the work the trace's duration waited on.
  function criticalPath(root, children, parentOf) {
    const endOf = (s) => s.startTime + s.duration;
    const sections = [];
    const clipped = new Map([[root.spanID, [root.startTime, endOf(root)]]]);
    const bounds = (s) => clipped.get(s.spanID);
    let current = root, until = endOf(root);
    for (let guard = 0; guard < 100000; guard++) {
      const [c0, c1] = bounds(current);
      let last = null, lastEnd = -Infinity;
      for (const k of children.get(current.spanID) || []) {
        const k0 = Math.max(k.startTime, c0), k1 = Math.min(endOf(k), c1);
        if (k1 <= k0) continue;
        clipped.set(k.spanID, [k0, k1]);
        if (k1 <= until && k1 > lastEnd) { last = k; lastEnd = k1; }
      }
      if (last) {
        if (lastEnd < until) sections.push([current.spanID, lastEnd, until]);
        current = last;
        until = lastEnd;
        continue;
      }
      if (until > c0) sections.push([current.spanID, c0, until]);
      if (current === root) break;
      until = c0;
      current = parentOf.get(current.spanID);
      if (!current) break;
    }
    return sections;
  }

  // A flame graph (icicle): one row per depth; a span's children sit side by side under it,
  // each as wide as its share of the parent's time (scaled down together when concurrent
  // children add up to more than the parent), in start order. The widest boxes are where
  // the time went; time order within a parent is kept, absolute time is not.
  function flameGraph(rows, t, svcOf) {
    const depth = Math.max(...rows.map((r) => r.depth)) + 1;
    const byId = new Map(rows.map((r) => [r.span.spanID, r]));
    const place = new Map();
    const lay = (r, left, width) => {
      place.set(r.span.spanID, [left, width]);
      const sum = r.kids.reduce((n, k) => n + k.duration, 0);
      const scale = width / Math.max(r.span.duration, sum, 1);
      let x = left;
      for (const k of r.kids) { lay(byId.get(k.spanID), x, k.duration * scale); x += k.duration * scale; }
    };
    const roots = rows.filter((r) => r.depth === 0);
    const total = roots.reduce((n, r) => n + r.span.duration, 0) || 1;
    let x = 0;
    for (const r of roots) { lay(r, x, (100 * r.span.duration) / total); x += (100 * r.span.duration) / total; }
    const boxes = rows.map((r) => {
      const s = r.span, svc = svcOf(s), [left, width] = place.get(s.spanID);
      return `<div class="flame-node${isError(s) ? " error" : ""}" data-span-id="${s.spanID}" style="left:${left.toFixed(3)}%;width:${Math.max(width, 0.1).toFixed(3)}%;top:${r.depth * 1.7}rem;background:${colorOf(svc)}"
        title="${esc(`${svc}: ${s.operationName} ${fmtDur(s.duration)} (self ${fmtDur(r.self)})`)}">${width > 6 ? esc(`${svc}: ${s.operationName}`) : ""}</div>`;
    }).join("");
    return `<div class="flame-area" style="height:${depth * 1.7}rem">${boxes}</div>`;
  }

  // A log's severity: its `level` field (log records), "event" for a span event.
  const logLevel = (l) => tagValue(l.fields, "level") || (tagValue(l.fields, "event") === "exception" ? "ERROR" : "EVENT");

  // Per service and operation: spans, total time and self time, the slowest self first.
  function traceStatistics(rows, svcOf) {
    const byOp = new Map();
    for (const r of rows) {
      const key = `${svcOf(r.span)}\u0000${r.span.operationName}`;
      const e = byOp.get(key) || { service: svcOf(r.span), operation: r.span.operationName, count: 0, total: 0, self: 0 };
      e.count += 1; e.total += r.span.duration; e.self += r.self;
      byOp.set(key, e);
    }
    return [...byOp.values()].sort((a, b) => b.self - a.self);
  }

  function renderTrace(t) {
    const { trace } = t;
    [...t.services.keys()].sort().forEach(colorOf);
    const svcOf = (s) => trace.processes[s.processID].serviceName;
    const children = new Map();
    const roots = [];
    for (const s of trace.spans) {
      const p = t.parentOf(s);
      if (p) { if (!children.has(p)) children.set(p, []); children.get(p).push(s); } else roots.push(s);
    }
    const byStart = (a, b) => a.startTime - b.startTime;
    roots.sort(byStart);
    for (const c of children.values()) c.sort(byStart);
    const rows = [];
    const stack = roots.slice().reverse().map((s) => [s, 0]);
    while (stack.length) {
      const [s, depth] = stack.pop();
      rows.push({ span: s, depth, kids: children.get(s.spanID) || [] });
      const kids = children.get(s.spanID) || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
    }
    const maxDepth = Math.max(...rows.map((r) => r.depth)) + 1;
    let slowest = rows[0];
    for (const r of rows) { r.self = selfTime(r.span, r.kids); if (r.self > slowest.self) slowest = r; }
    const total = Math.max(t.duration, 1);
    const pct = (us) => ((100 * us) / total);
    const parentSpan = new Map();
    for (const r of rows) for (const k of r.kids) parentSpan.set(k.spanID, r.span);
    const critical = new Map();
    if (roots.length === 1) {
      for (const [id, a, b] of criticalPath(roots[0], children, parentSpan)) {
        if (!critical.has(id)) critical.set(id, []);
        critical.get(id).push([a, b]);
      }
    }
    const criticalTime = (id) => (critical.get(id) || []).reduce((n, [a, b]) => n + b - a, 0);
    const stats = traceStatistics(rows, svcOf);
    const allLogs = rows.flatMap((r) => r.span.logs.map((l) => ({ l, r })))
      .sort((a, b) => a.l.timestamp - b.l.timestamp);
    const logsHtml = allLogs.length ? `<details class="trace-logs" id="trace-logs"><summary>Logs (${allLogs.length}): every log line and event of the trace, in time order</summary>
      <table class="stats-table"><thead><tr><th>At</th><th>Level</th><th>Service: span</th><th>Message</th></tr></thead><tbody>
      ${allLogs.map(({ l, r }) => `<tr class="trace-log" data-span="${r.span.spanID}"><td>+${fmtDur(l.timestamp - t.start)}</td><td>${esc(logLevel(l))}</td>
        <td><a href="#" data-span="${r.span.spanID}">${esc(svcOf(r.span))}: ${esc(r.span.operationName)}</a></td><td>${esc(tagValue(l.fields, "event") || "")}</td></tr>`).join("")}
      </tbody></table></details>` : "";
    const statsHtml = `<details class="trace-stats" id="trace-stats"><summary>Trace statistics: self time by service and operation</summary>
      <table class="stats-table"><thead><tr><th>Service</th><th>Operation</th><th>Spans</th><th>Total</th><th>Self time</th><th>Self % of trace</th></tr></thead>
      <tbody>${stats.map((e) => `<tr><td>${esc(e.service)}</td><td>${esc(e.operation)}</td><td>${e.count}</td>
        <td>${fmtDur(e.total)}</td><td>${fmtDur(e.self)}</td><td>${(100 * e.self / total).toFixed(1)}%</td></tr>`).join("")}</tbody></table></details>`;

    const legend = [...t.services].sort((a, b) => b[1] - a[1]).map(([svc, n]) =>
      `<span class="chip" style="background:${colorOf(svc)}">${esc(svc)} (${n})</span>`).join("");
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
      `<span style="left:${f * 100}%">${fmtDur(f * total)}</span>`).join("");
    const rowHtml = rows.map((r, i) => {
      const s = r.span, svc = svcOf(s), color = colorOf(svc), err = isError(s);
      const left = pct(s.startTime - t.start), width = Math.max(pct(s.duration), 0.15);
      // The duration label goes right of the bar, else left of it, else inside it.
      const [labelPos, labelCls] = left + width <= 75 ? [`left:${(left + width + 0.5).toFixed(3)}%`, ""]
        : left >= 12 ? [`right:${(100 - left + 0.5).toFixed(3)}%`, ""]
        : [`left:${(left + 0.6).toFixed(3)}%`, " inside"];
      const onPath = critical.has(s.spanID);
      return `<div class="span-row${onPath ? " on-critical-path" : ""}" tabindex="0" data-idx="${i}" data-span-id="${s.spanID}" data-depth="${r.depth}"${onPath ? ` data-critical-us="${criticalTime(s.spanID)}"` : ""}>
        <div class="span-label" style="padding-left:${0.3 + r.depth * 1.1}rem">
          <button class="toggle" type="button" aria-label="Collapse children" ${r.kids.length ? "" : "disabled"}>▾</button>
          <span class="svc-mark" style="background:${color}"></span>
          ${err ? `<span class="err-mark" title="error">!</span>` : ""}
          <span class="span-service">${esc(svc)}</span>
          <span class="span-name">${esc(s.operationName)}</span>
          ${r === slowest && rows.length > 1 ? `<span class="slow-mark" title="the most time spent in this span itself">slowest</span>` : ""}
        </div>
        <div class="span-timeline"><div class="bar${err ? " error" : ""}" style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%;background:${color}"></div>
          ${s.logs.map((l) => `<span class="log-mark${logLevel(l) === "ERROR" || tagValue(l.fields, "event") === "exception" ? " error" : ""}" style="left:${pct(l.timestamp - t.start).toFixed(3)}%" title="${esc(`+${fmtDur(l.timestamp - t.start)} ${logLevel(l)} ${tagValue(l.fields, "event") || ""}`)}"></span>`).join("")}
          ${(critical.get(s.spanID) || []).map(([a, b]) => `<div class="crit" style="left:${pct(a - t.start).toFixed(3)}%;width:${Math.max(pct(b - a), 0.15).toFixed(3)}%"></div>`).join("")}
          <span class="bar-label${labelCls}" style="${labelPos}">${fmtDur(s.duration)}</span></div>
      </div>`;
    }).join("");

    view.innerHTML = `<div class="trace-head">
        <h1><span style="color:${colorOf(t.rootService)}">${esc(t.rootService)}</span>: ${esc(t.root.operationName)}</h1>
        <span class="stat">Trace <span class="mono" id="trace-id">${t.id}</span>
          <button class="plain copy" id="copy-id" type="button">Copy</button></span>
        <span class="stat">Started <b>${fmtTime(t.start)}</b></span>
        <span class="stat">Duration <b>${fmtDur(t.duration)}</b></span>
        <span class="stat">Services <b>${t.services.size}</b></span>
        <span class="stat">Depth <b>${maxDepth}</b></span>
        <span class="stat">Spans <b>${trace.spans.length}</b></span>
        <span class="stat">Errors <b class="${t.errors ? "err" : ""}">${t.errors}</b></span>
        <span class="stat">Slowest span (self time) <a href="#" id="goto-slowest"><b>${esc(svcOf(slowest.span))}: ${esc(slowest.span.operationName)}</b> ${fmtDur(slowest.self)}</a></span>
      </div>
      <form class="compare-form" id="compare-form"><label>Compare with trace <input id="compare-id" class="mono" placeholder="trace ID" size="34"></label>
        <button class="plain" type="submit">Compare</button></form>
      ${linksPanel(t.links)}
      <div class="legend">${legend}${critical.size ? `<span class="crit-key" title="the stretches of spans the trace's end waited on (Jaeger's critical path)"><span class="crit-swatch"></span>critical path</span>` : ""}</div>
      ${statsHtml}${logsHtml}
      <div class="view-switch"><button class="plain" type="button" id="show-flame" aria-pressed="false">Flame graph</button></div>
      <div class="flame" id="flame" hidden>${flameGraph(rows, t, svcOf)}</div>
      <div class="waterfall" id="waterfall">
        <div class="wf-head"><div>Service &amp; operation</div><div class="ruler">${ticks}</div></div>
        <div id="rows">${rowHtml}</div>
      </div>`;

    document.getElementById("compare-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const other = document.getElementById("compare-id").value.trim().toLowerCase();
      if (other) navigate(`/trace/${t.id}...${encodeURIComponent(other)}`);
    });
    document.getElementById("copy-id").addEventListener("click", async (e) => {
      const btn = e.currentTarget;
      try { await navigator.clipboard.writeText(t.id); } catch (_) {
        const r = document.createRange();
        r.selectNodeContents(document.getElementById("trace-id"));
        getSelection().removeAllRanges(); getSelection().addRange(r);
        document.execCommand("copy");
      }
      btn.textContent = "Copied";
      setTimeout(() => { btn.textContent = "Copy"; }, 1500);
    });

    document.getElementById("show-flame").addEventListener("click", (e) => {
      const flame = document.getElementById("flame");
      const showing = flame.hidden;
      flame.hidden = !showing;
      document.getElementById("waterfall").hidden = showing;
      e.currentTarget.textContent = showing ? "Waterfall" : "Flame graph";
      e.currentTarget.setAttribute("aria-pressed", String(showing));
    });
    const rowsEl = document.getElementById("rows");
    const traceLogs = document.getElementById("trace-logs");
    if (traceLogs) traceLogs.addEventListener("click", (e) => {
      const a = e.target.closest("a[data-span]");
      if (!a) return;
      e.preventDefault();
      const target = rowsEl.querySelector(`.span-row[data-span-id="${a.dataset.span}"]`);
      if (target) { target.scrollIntoView({ block: "center" }); if (!target.classList.contains("selected")) openDetail(target); }
    });
    const rowEls = [...rowsEl.children];
    const collapsed = new Set();
    const applyCollapse = () => {
      let hideDepth = Infinity;
      for (const el of rowEls) {
        if (!el.classList.contains("span-row")) continue;
        const d = +el.dataset.depth;
        if (d <= hideDepth) hideDepth = Infinity;
        const hidden = d > hideDepth;
        el.classList.toggle("collapsed-hidden", hidden);
        const detail = el.nextElementSibling;
        if (detail && detail.classList.contains("span-detail")) detail.hidden = hidden;
        if (!hidden && collapsed.has(el.dataset.spanId)) hideDepth = d;
      }
    };
    const openDetail = (rowEl) => {
      const next = rowEl.nextElementSibling;
      if (next && next.classList.contains("span-detail")) {
        next.remove();
        rowEl.classList.remove("selected");
        return;
      }
      const r = rows[+rowEl.dataset.idx];
      rowEl.insertAdjacentHTML("afterend", spanDetail(r, t, svcOf));
      rowEl.classList.add("selected");
    };
    rowsEl.addEventListener("click", (e) => {
      const rowEl = e.target.closest(".span-row");
      if (e.target.closest(".span-detail a[data-span]")) {
        e.preventDefault();
        const target = rowsEl.querySelector(`.span-row[data-span-id="${e.target.closest("a").dataset.span}"]`);
        if (target) { target.scrollIntoView({ block: "center" }); if (!target.classList.contains("selected")) openDetail(target); }
        return;
      }
      if (!rowEl) return;
      const toggle = e.target.closest(".toggle");
      if (toggle) {
        const id = rowEl.dataset.spanId;
        if (collapsed.has(id)) collapsed.delete(id); else collapsed.add(id);
        toggle.textContent = collapsed.has(id) ? "▸" : "▾";
        toggle.setAttribute("aria-label", collapsed.has(id) ? "Expand children" : "Collapse children");
        applyCollapse();
        return;
      }
      openDetail(rowEl);
    });
    rowsEl.addEventListener("keydown", (e) => {
      const rowEl = e.target.closest(".span-row");
      if (!rowEl || e.target !== rowEl) return;
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openDetail(rowEl); }
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const all = [...rowsEl.querySelectorAll(".span-row:not(.collapsed-hidden)")];
        const next = all[all.indexOf(rowEl) + (e.key === "ArrowDown" ? 1 : -1)];
        if (next) next.focus();
      }
    });
    document.getElementById("goto-slowest").addEventListener("click", (e) => {
      e.preventDefault();
      const el = rowsEl.querySelector(`.span-row[data-span-id="${slowest.span.spanID}"]`);
      collapsed.clear();
      rowsEl.querySelectorAll(".toggle").forEach((b) => { b.textContent = "▾"; });
      applyCollapse();
      el.scrollIntoView({ block: "center" });
      if (!el.classList.contains("selected")) openDetail(el);
    });
  }

  function kvTable(kvs, cls) {
    if (!kvs || !kvs.length) return `<p class="muted">none</p>`;
    return `<table class="kv ${cls}"><tbody>${kvs.map((kv) => {
      const v = typeof kv.value === "string" ? kv.value : JSON.stringify(kv.value);
      const errorTag = (kv.key === "error" && (kv.value === true || kv.value === "true")) || (kv.key === "otel.status_code" && kv.value === "ERROR");
      return `<tr class="${errorTag ? "error-tag" : ""}"><td class="key">${esc(kv.key)}</td><td class="value" title="${esc(kv.type)}">${esc(v)}</td></tr>`;
    }).join("")}</tbody></table>`;
  }

  function spanDetail(r, t, svcOf) {
    const s = r.span, proc = t.trace.processes[s.processID];
    const kind = tagValue(s.tags, "span.kind") || "unspecified";
    const logs = s.logs.map((l) => {
      const ev = tagValue(l.fields, "event");
      return `<div class="log${ev === "exception" ? " exception" : ""}"><b>+${fmtDur(l.timestamp - t.start)}</b>
        ${ev ? `<b>${esc(ev)}</b>` : ""}${kvTable(l.fields.filter((f) => f.key !== "event"), "log-fields")}</div>`;
    }).join("") || `<p class="muted">none</p>`;
    const refs = s.references.map((ref) => {
      const inTrace = ref.traceID === t.id && t.trace.spans.some((x) => x.spanID === ref.spanID);
      const known = t.links && t.links.links.find((l) => l.spanID === s.spanID && l.traceID === ref.traceID && l.targetSpanID === ref.spanID);
      const named = known && known.held ? `<b>${esc(known.rootService)}: ${esc(known.rootOperation)}</b>, at ${esc(known.targetService || "?")}: ${esc(known.targetOperation || "?")} — ` : "";
      const target = inTrace
        ? `<a href="#" data-span="${ref.spanID}" class="mono">${ref.spanID}</a>`
        : `${named}<a href="/trace/${ref.traceID}" data-link class="mono span-link">${ref.traceID}</a> span <span class="mono">${ref.spanID}</span>`;
      return `<li>${ref.refType === "CHILD_OF" ? "parent" : "link (FOLLOWS_FROM)"}: ${target}</li>`;
    }).join("");
    return `<div class="span-detail" data-detail-for="${s.spanID}">
      <h3><span style="color:${colorOf(svcOf(s))}">${esc(svcOf(s))}</span>: ${esc(s.operationName)}</h3>
      <div class="facts"><span>Duration <b>${fmtDur(s.duration)}</b></span>
        <span>Self time <b>${fmtDur(r.self)}</b></span>
        <span>Starts at <b>+${fmtDur(s.startTime - t.start)}</b></span>
        <span>Kind <b>${esc(kind)}</b></span>
        <span>Span ID <span class="mono">${s.spanID}</span></span></div>
      <h4>Tags</h4>${kvTable(s.tags, "tags-table")}
      <h4>Resource (process ${esc(proc.serviceName)})</h4>${kvTable(proc.tags, "process-table")}
      <h4>Logs (${s.logs.length})</h4>${logs}
      <h4>References</h4>${refs ? `<ul>${refs}</ul>` : `<p class="muted">root span</p>`}
    </div>`;
  }

  // ---- dependencies --------------------------------------------------------------------
  // ---- monitor: RED per operation, from Jaeger's SPM API ------------------------------
  const MONITOR_LOOKBACKS = [["5m", "Last 5 minutes"], ["15m", "Last 15 minutes"], ["1h", "Last hour"]];

  async function showMonitor() {
    const q = new URLSearchParams(location.search);
    let services = [];
    try { services = (await api("/api/services")).data || []; } catch (e) {
      view.innerHTML = `<div class="alert">${esc(e.message)}</div>`;
      return;
    }
    if (!services.length) {
      view.innerHTML = `<div class="empty">No services yet: send some traffic (make traffic) and come back.</div>`;
      return;
    }
    const service = services.includes(q.get("service")) ? q.get("service") : (services.includes(localStorage.getItem("otel-lab.service")) ? localStorage.getItem("otel-lab.service") : services[0]);
    const lookback = MONITOR_LOOKBACKS.some(([v]) => v === q.get("lookback")) ? q.get("lookback") : "15m";
    view.innerHTML = `<div class="monitor">
      <form id="monitor-form" class="monitor-form">
        <label>Service <select id="m-service">${services.map((s) => `<option${s === service ? " selected" : ""}>${esc(s)}</option>`).join("")}</select></label>
        <label>Window <select id="m-lookback">${MONITOR_LOOKBACKS.map(([v, t]) => `<option value="${v}"${v === lookback ? " selected" : ""}>${t}</option>`).join("")}</select></label>
        <span class="muted">Server spans, computed from the traces the explorer holds (no Prometheus needed).</span>
      </form>
      <section id="monitor-table"><div class="empty">Loading…</div></section></div>`;
    const go = () => navigate(`/monitor?service=${encodeURIComponent(document.getElementById("m-service").value)}&lookback=${document.getElementById("m-lookback").value}`);
    document.getElementById("m-service").addEventListener("change", go);
    document.getElementById("m-lookback").addEventListener("change", go);

    const windowMs = lookbackMs(lookback), endTs = Date.now();
    const sparkStep = Math.max(1000, Math.ceil(windowMs / 30));
    const base = `service=${encodeURIComponent(service)}&groupByOperation=true&endTs=${endTs}&lookback=${windowMs}`;
    const whole = `${base}&step=${windowMs}`;
    let fams;
    try {
      fams = await Promise.all([
        api(`/api/metrics/calls?${whole}`), api(`/api/metrics/errors?${whole}`),
        api(`/api/metrics/latencies?${whole}&quantile=0.5`), api(`/api/metrics/latencies?${whole}&quantile=0.95`),
        api(`/api/metrics/latencies?${whole}&quantile=0.99`), api(`/api/metrics/calls?${base}&step=${sparkStep}`),
      ]);
    } catch (e) {
      document.getElementById("monitor-table").innerHTML = `<div class="alert">${esc(e.message)}</div>`;
      return;
    }
    // operation -> value of each family (one point each for the whole window).
    const byOp = (fam) => new Map(fam.metrics.map((m) => [m.labels.find((l) => l.name === "operation").value, m.metricPoints]));
    const [calls, errors, p50, p95, p99, spark] = fams.map(byOp);
    const one = (map, op) => { const pts = map.get(op); return pts && pts.length ? pts[pts.length - 1].gaugeValue.doubleValue : 0; };
    const ops = [...calls.keys()].sort((a, b) => one(calls, b) - one(calls, a));
    if (!ops.length) {
      document.getElementById("monitor-table").innerHTML = `<div class="empty">No server spans of ${esc(service)} in this window.</div>`;
      return;
    }
    // Steps without calls are absent from the API's answer: they are zeros on the line.
    const steps = Math.ceil(windowMs / sparkStep);
    const sparkline = (op) => {
      const byTime = new Map((spark.get(op) || []).map((p) => [Date.parse(p.timestamp), p.gaugeValue.doubleValue]));
      const values = Array.from({ length: steps }, (_, k) => byTime.get(endTs - (steps - 1 - k) * sparkStep) || 0);
      const max = Math.max(...values, 1e-9);
      const path = values.map((v, k) => `${k ? "L" : "M"}${((120 * k) / Math.max(steps - 1, 1)).toFixed(1)},${(22 - (20 * v) / max).toFixed(1)}`).join("");
      return `<svg class="spark" viewBox="0 0 120 24" width="120" height="24" aria-label="calls over the window"><path d="${path}"/></svg>`;
    };
    const secs = windowMs / 1000;
    const search = (op, extra) => `/search?service=${encodeURIComponent(service)}&operation=${encodeURIComponent(op)}&lookback=${lookback}&limit=20${extra}`;
    document.getElementById("monitor-table").innerHTML = `<table class="monitor-table"><thead><tr>
        <th>Operation</th><th>Requests</th><th>Rate</th><th>Errors</th><th>p50</th><th>p95</th><th>p99</th><th>Calls over the window</th><th>Traces</th></tr></thead><tbody>
      ${ops.map((op) => {
        const n = Math.round(one(calls, op) * secs), err = one(errors, op);
        return `<tr class="monitor-row" data-operation="${esc(op)}">
          <td>${esc(op)}</td><td class="m-requests">${n}</td><td>${(one(calls, op)).toFixed(n && one(calls, op) < 0.1 ? 3 : 2)}/s</td>
          <td class="m-errors${err > 0 ? " err" : ""}">${(100 * err).toFixed(1)}%</td>
          <td class="m-p50">${fmtDur(one(p50, op) * 1000)}</td><td class="m-p95">${fmtDur(one(p95, op) * 1000)}</td><td class="m-p99">${fmtDur(one(p99, op) * 1000)}</td>
          <td>${sparkline(op)}</td>
          <td><a href="${search(op, `&minDuration=${Math.max(1, Math.floor(one(p95, op)))}ms`)}" data-link>slowest</a>
            · <a href="${search(op, "&tags=error%3Dtrue")}" data-link>errors</a></td></tr>`;
      }).join("")}</tbody></table>`;
  }

  // ---- logs: every log record the gateway kept, searchable -------------------------------
  async function showLogs() {
    const q = new URLSearchParams(location.search);
    let services = [];
    try { services = (await api("/api/services")).data || []; } catch (_) { /* listed empty */ }
    const levels = ["", "ERROR", "WARN", "INFO", "DEBUG"];
    view.innerHTML = `<div class="logs-page"><form id="logs-form" class="monitor-form" autocomplete="off">
        <label>Service <select id="l-service"><option value="">all</option>${services.map((s) => `<option${s === q.get("service") ? " selected" : ""}>${esc(s)}</option>`).join("")}</select></label>
        <label>Level <select id="l-level">${levels.map((l) => `<option value="${l}"${l === (q.get("level") || "") ? " selected" : ""}>${l || "any"}</option>`).join("")}</select></label>
        <label>Text <input id="l-text" value="${esc(q.get("text") || "")}" placeholder="payment failed" spellcheck="false"></label>
        <label>Lookback <select id="l-lookback">${LOOKBACKS.map(([v, t]) => `<option value="${v}"${v === (q.get("lookback") || "1h") ? " selected" : ""}>${t}</option>`).join("")}</select></label>
        <button type="submit" id="logs-btn">Find logs</button></form><section id="logs-results"></section></div>`;
    document.getElementById("logs-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const [k, id] of [["service", "l-service"], ["level", "l-level"], ["text", "l-text"], ["lookback", "l-lookback"]]) {
        const v = document.getElementById(id).value.trim();
        if (v) p.set(k, v);
      }
      navigate(`/logs?${p}`);
    });
    if (![...q.keys()].length) return;
    const params = new URLSearchParams(q);
    params.set("limit", "500");
    let found;
    try { found = (await api(`/api/lab/logs?${params}`)).data || []; } catch (e) {
      document.getElementById("logs-results").innerHTML = `<div class="alert">${esc(e.message)}</div>`;
      return;
    }
    const traces = [...new Set(found.filter((l) => l.traceID).map((l) => l.traceID))];
    document.getElementById("logs-results").innerHTML = found.length ? `
      <p><b>${found.length}</b> log record${found.length === 1 ? "" : "s"}, in <b>${traces.length}</b> trace${traces.length === 1 ? "" : "s"}${traces.length ? `: ${traces.slice(0, 20).map((t) => `<a href="/trace/${t}" data-link class="mono log-trace">${t.slice(0, 12)}</a>`).join(" ")}` : ""}</p>
      <table class="stats-table logs-table"><thead><tr><th>Time</th><th>Service</th><th>Level</th><th>Message</th><th>Trace</th></tr></thead><tbody>
      ${found.map((l) => `<tr class="log-row"><td>${esc(fmtTime(l.timestamp))}</td><td>${esc(l.service)}</td><td class="${l.level === "ERROR" ? "err" : ""}">${esc(l.level)}</td>
        <td>${esc(l.message)}</td><td>${l.traceID ? `<a href="/trace/${l.traceID}" data-link class="mono">${l.traceID.slice(0, 12)}</a>` : `<span class="muted">none</span>`}</td></tr>`).join("")}
      </tbody></table>` : `<div class="empty">No log records match.</div>`;
  }

  async function showDependencies() {
    const q = new URLSearchParams(location.search);
    const lb = q.get("lookback") || "24h";
    view.innerHTML = `<div class="deps"><div class="summary"><h2>Service dependencies</h2>
      <select id="deps-lookback" aria-label="Lookback">${LOOKBACKS.map(([v, t]) =>
        `<option value="${v}"${v === lb ? " selected" : ""}>${t}</option>`).join("")}</select></div>
      <div id="graph"><div class="empty">Loading…</div></div></div>`;
    document.getElementById("deps-lookback").addEventListener("change", (e) =>
      navigate(`/dependencies?lookback=${e.target.value}`));
    const graph = document.getElementById("graph");
    let links;
    try {
      links = (await api(`/api/dependencies?endTs=${Date.now()}&lookback=${Math.round(lookbackMs(lb))}`)).data || [];
    } catch (e) {
      graph.innerHTML = `<div class="alert">${esc(e.message)}</div>`;
      return;
    }
    if (!links.length) {
      graph.innerHTML = `<div class="empty">No calls between services in this window.</div>`;
      return;
    }
    graph.innerHTML = dependencyGraph(links) + `<table class="kv deps-table" style="margin-top:1rem;width:auto"><tbody>
      ${links.map((l) => `<tr><td class="key">${esc(l.parent)} → ${esc(l.child)}</td><td class="value">${l.callCount} call${l.callCount === 1 ? "" : "s"}</td></tr>`).join("")}
      </tbody></table>`;
  }

  // Layered layout: a service sits one column right of its deepest caller.
  function dependencyGraph(links) {
    const names = [...new Set(links.flatMap((l) => [l.parent, l.child]))].sort();
    const out = new Map(names.map((n) => [n, []]));
    for (const l of links) out.get(l.parent).push(l.child);
    const layer = new Map();
    const visiting = new Set();
    const depthOf = (n) => {
      if (layer.has(n)) return layer.get(n);
      if (visiting.has(n)) return 0; // a cycle: break it here
      visiting.add(n);
      let d = 0;
      for (const l of links) if (l.child === n && l.parent !== n) d = Math.max(d, depthOf(l.parent) + 1);
      visiting.delete(n);
      layer.set(n, d);
      return d;
    };
    names.forEach(depthOf);
    const cols = [];
    for (const n of names) { const d = layer.get(n); (cols[d] = cols[d] || []).push(n); }
    const boxW = Math.max(...names.map((n) => 24 + n.length * 10)), boxH = 44, colGap = 120, rowGap = 40;
    const W = 40 + cols.length * (boxW + colGap) - colGap + 40;
    const H = 40 + Math.max(...cols.map((c) => c.length)) * (boxH + rowGap) - rowGap + 40;
    const pos = new Map();
    cols.forEach((c, i) => {
      const colH = c.length * (boxH + rowGap) - rowGap;
      c.forEach((n, j) => pos.set(n, { x: 40 + i * (boxW + colGap), y: (H - colH) / 2 + j * (boxH + rowGap) }));
    });
    const edges = links.map((l) => {
      const a = pos.get(l.parent), b = pos.get(l.child);
      let d, lx, ly;
      if (b.x > a.x) {
        const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x - 4, y2 = b.y + boxH / 2, mx = (x1 + x2) / 2;
        d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
        lx = mx; ly = (y1 + y2) / 2 - 6;
      } else { // a call back to an earlier column (or itself): loop under the boxes
        const x1 = a.x + boxW / 2, y1 = a.y + boxH, x2 = b.x + boxW / 2 + 8, y2 = b.y + boxH + 4, dy = 50;
        d = `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 + dy} ${x2},${y2}`;
        lx = (x1 + x2) / 2; ly = Math.max(y1, y2) + dy * 0.75;
      }
      return `<path class="edge" d="${d}" marker-end="url(#arrow)"/><text class="edge-label" x="${lx}" y="${ly}" text-anchor="middle">${l.callCount}</text>`;
    }).join("");
    const nodes = names.map((n) => {
      const p = pos.get(n);
      return `<g class="node"><rect x="${p.x}" y="${p.y}" width="${boxW}" height="${boxH}" rx="8" stroke="${colorOf(n)}"/>
        <text x="${p.x + boxW / 2}" y="${p.y + boxH / 2 + 6}" text-anchor="middle">${esc(n)}</text></g>`;
    }).join("");
    return `<svg viewBox="0 0 ${W} ${H + 40}" style="max-height:70vh;max-width:${Math.max(W * 1.3, 700)}px" role="img" aria-label="Service dependency graph">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
      <path d="M0,0 L10,5 L0,10 z" fill="#555" stroke="none"/></marker></defs>${edges}${nodes}</svg>`;
  }

  route();
})();
