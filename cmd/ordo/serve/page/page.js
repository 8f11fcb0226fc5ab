// The operator's page: reads Ordo's JSON API and renders the overview
// (#/) or one order (#/orders/<id>), refreshing itself every few seconds.
// No framework and no build step; every value is inserted as text.
"use strict";
(() => {
  const REFRESH_MS = 5000;
  const DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
  const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
  const ORDER_STATES = ["placed", "awaiting_payment", "paid", "shipped", "delivered", "completed", "cancelled", "refunded"];
  const $ = (sel) => document.querySelector(sel);

  // el builds an element: el("td", {class: "num"}, "text", childNode…).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  async function getJSON(path, headers) {
    const resp = await fetch(path, { headers: { Accept: "application/json", ...headers } });
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    if (!resp.ok) {
      const msg = body && body.error ? `${body.error.code}: ${body.error.message}` : `${resp.status} ${resp.statusText}`;
      const err = new Error(`${path}: ${msg}`);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  function age(since) {
    const t = Date.parse(since);
    if (Number.isNaN(t)) return "";
    let s = Math.max(0, Math.floor((Date.now() - t) / 1000));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function when(ts) {
    const t = Date.parse(ts);
    return Number.isNaN(t) ? "" : new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  const digitsCache = {};
  function money(amount, currency) {
    if (amount === undefined || amount === null) return "";
    let digits = digitsCache[currency];
    if (digits === undefined) {
      try {
        digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
      } catch (_) {
        digits = 0;
      }
      digitsCache[currency] = digits;
    }
    return `${(amount / 10 ** digits).toFixed(digits)} ${currency || ""}`.trim();
  }

  const orderLink = (id) => el("a", { href: `#/orders/${id}`, class: "mono" }, id);

  function fill(tbody, rows, cols, emptyText) {
    tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: cols }, emptyText))]));
  }

  // Problems are shown on the page, not thrown: a failing endpoint must
  // not stop the other panels from refreshing.
  const problems = [];
  function report(err) { problems.push(err.message || String(err)); }
  function showProblems() {
    const box = $("#problem");
    box.hidden = problems.length === 0;
    box.textContent = problems.join(" · ");
    problems.length = 0;
  }

  // --- overview -----------------------------------------------------------

  const payInput = $("#pay-threshold");
  const tInput = $("#threshold");
  {
    const q = new URLSearchParams(location.search);
    payInput.value = q.get("pay") || document.body.dataset.paymentTimeout;
    tInput.value = q.get("t") || "24h";
  }

  function thresholds() {
    const pay = payInput.value.trim(), t = tInput.value.trim();
    payInput.classList.toggle("invalid", !DURATION.test(pay));
    tInput.classList.toggle("invalid", !DURATION.test(t));
    if (!DURATION.test(pay) || !DURATION.test(t)) return null;
    return { pay, t };
  }

  for (const input of [payInput, tInput]) {
    input.addEventListener("change", () => {
      const th = thresholds();
      if (!th) return;
      const q = new URLSearchParams(location.search);
      q.set("pay", th.pay);
      q.set("t", th.t);
      history.replaceState(null, "", `?${q}${location.hash}`);
      refresh();
    });
  }

  const stuckLists = [
    { id: "stuck-awaiting_payment", path: (th) => `/v1/orders?state=awaiting_payment&older_than=${th.pay}&limit=100`, kind: "order" },
    { id: "stuck-paid", path: (th) => `/v1/orders?state=paid&older_than=${th.t}&limit=100`, kind: "order" },
    { id: "stuck-shipped", path: (th) => `/v1/orders?state=shipped&older_than=${th.t}&limit=100`, kind: "order" },
    { id: "stuck-refund_requested", path: (th) => `/v1/refunds?status=requested&older_than=${th.t}&limit=100`, kind: "refund" },
  ];

  async function renderStuck(list, th) {
    const box = document.getElementById(list.id);
    const page = await getJSON(list.path(th));
    const rows = page.items.map((it) => list.kind === "order"
      ? el("tr", { "data-order-id": it.order_id },
        el("td", {}, orderLink(it.order_id)), el("td", {}, it.customer_id),
        el("td", { class: "num" }, money(it.total.amount, it.total.currency)),
        el("td", { class: "num age", title: `in ${it.state} since ${when(it.state_since)}` }, age(it.state_since)))
      : el("tr", { "data-order-id": it.order_id, "data-refund-id": it.refund_id },
        el("td", {}, orderLink(it.order_id)), el("td", { class: "mono" }, it.refund_id),
        el("td", { class: "num" }, money(it.amount, it.currency)),
        el("td", { class: "num age", title: `requested ${when(it.requested_at)}` }, age(it.requested_at))));
    fill(box.querySelector("tbody"), rows, 4, "none");
    box.querySelector(".count").textContent = `(${page.items.length}${page.next_cursor ? "+" : ""})`;
  }

  async function renderCounts() {
    const stats = await getJSON("/v1/stats");
    const order = { orders: ORDER_STATES };
    const boxes = [["orders", "Orders"], ["payments", "Payments"], ["shipments", "Shipping"], ["refunds", "Refunds"]].map(([key, title]) => {
      const counts = stats[key] || {};
      const keys = (order[key] || []).concat(Object.keys(counts).filter((k) => !(order[key] || []).includes(k)).sort());
      const rows = keys.map((k) => el("tr", { "data-status": k }, el("td", {}, k), el("td", { class: "num" }, counts[k] || 0)));
      const table = el("table", { id: `counts-${key}` }, el("tbody"));
      fill(table.querySelector("tbody"), rows, 2, "none yet");
      return el("div", {}, el("h3", {}, title), table);
    });
    $("#counts").replaceChildren(...boxes);
  }

  function spark(buckets) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const w = 600, h = 60, bw = w / buckets.length;
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    const max = Math.max(1, ...buckets.map((b) => b.commands));
    buckets.forEach((b, i) => {
      for (const [cls, n] of [["n", b.commands], ["e", b.errors]]) {
        if (!n) continue;
        const r = document.createElementNS(ns, "rect");
        const bh = Math.max(1, (n / max) * (h - 2));
        r.setAttribute("class", cls);
        r.setAttribute("x", String(i * bw + 0.5));
        r.setAttribute("width", String(Math.max(1, bw - 1)));
        r.setAttribute("y", String(h - bh));
        r.setAttribute("height", String(bh));
        const title = document.createElementNS(ns, "title");
        title.textContent = `${when(b.start)}: ${b.commands} commands, ${b.errors} errors`;
        r.append(title);
        svg.append(r);
      }
    });
    return svg;
  }

  async function renderRate() {
    const r = await getJSON("/v1/commands/rate");
    const perMin = 60 / r.bucket_seconds;
    const lastMin = r.buckets.slice(-perMin); // the current bucket is partial
    const lastMinCount = lastMin.reduce((n, b) => n + b.commands, 0);
    const minutes = (r.buckets.length * r.bucket_seconds) / 60;
    const errRate = r.commands ? ((100 * r.errors) / r.commands).toFixed(1) : "0.0";
    const codes = Object.entries(r.errors_by_code).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(", ");
    $("#rate").replaceChildren(
      el("dl", { class: "kv" },
        el("dt", {}, "last minute"), el("dd", { id: "rate-last-minute" }, `${lastMinCount} commands (${(lastMinCount / 60).toFixed(1)}/s)`),
        el("dt", {}, `last ${minutes} minutes`), el("dd", { id: "rate-window" }, `${r.commands} commands, ${r.errors} refused or failed (${errRate}%)`),
        el("dt", {}, "errors by code"), el("dd", { id: "rate-codes" }, codes || "none")),
      spark(r.buckets),
      el("p", { class: "muted" }, `commands answered by this instance per ${r.bucket_seconds} s; red: refused or failed`));
  }

  async function renderHealth() {
    const [proj, saga] = await Promise.all([getJSON("/v1/projections"), getJSON("/v1/saga")]);
    const p = proj.projections[0] || {};
    const state = (ok, text) => el("span", { class: ok ? "ok" : "bad" }, text);
    $("#health").replaceChildren(
      el("h3", {}, `read models (${p.name || "projection"})`),
      el("dl", { class: "kv", id: "projection" },
        el("dt", {}, "status"), el("dd", {}, p.running ? state(true, p.caught_up ? "running, caught up" : "running, catching up") : state(false, "stopped")),
        el("dt", {}, "lag"), el("dd", { id: "projection-lag" }, `${p.lag_positions} positions, ${Number(p.lag_seconds || 0).toFixed(1)} s`),
        el("dt", {}, "position / head"), el("dd", {}, `${p.position} / ${p.head}`),
        el("dt", {}, "events applied"), el("dd", {}, p.events_applied),
        p.error ? el("dt", {}, "error") : null, p.error ? el("dd", { class: "bad" }, p.error) : null,
        p.resuming ? el("dt", {}, "retrying") : null, p.resuming ? el("dd", { class: "bad" }, `${p.failed_attempts} failed attempts, next ${when(p.next_attempt_at)}`) : null),
      el("h3", {}, "order saga"),
      el("dl", { class: "kv", id: "saga" },
        el("dt", {}, "status"), el("dd", {}, saga.running ? state(!saga.last_error, saga.last_error ? "running, retrying" : "running") : state(false, "stopped")),
        el("dt", {}, "position / checkpoint"), el("dd", {}, `${saga.position} / ${saga.checkpoint}`),
        el("dt", {}, "in flight"), el("dd", {}, saga.in_flight),
        el("dt", {}, "events handled"), el("dd", {}, saga.events_handled),
        el("dt", {}, "step retries"), el("dd", {}, saga.step_retries),
        saga.last_error ? el("dt", {}, "last error") : null, saga.last_error ? el("dd", { class: "bad" }, saga.last_error) : null));
  }

  // The dead letters hold command bodies, so the service shows them only
  // with the admin token. The operator enters it once; it stays in this
  // tab's session storage, never in the URL, and is dropped when refused.
  const TOKEN_KEY = "ordo-admin-token";
  async function renderDeadLetters() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    $("#admin-token-form").hidden = !!token;
    if (!token) {
      fill($("#deadletters tbody"), [], 6, "enter the admin token above to see them");
      $("#dead-count").textContent = "";
      return;
    }
    let page;
    try {
      page = await getJSON("/v1/deadletters?limit=20", { Authorization: `Bearer ${token}` });
    } catch (err) {
      if (err.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        $("#admin-token-form").hidden = false;
      }
      throw err;
    }
    const rows = page.items.map((d) => el("tr", { "data-seq": d.seq },
      el("td", {}, when(d.time)), el("td", { class: "mono" }, d.code), el("td", {}, d.reason),
      el("td", { class: "mono", title: d.subject }, d.command_type || d.subject),
      el("td", {}, d.order_id && UUID.test(d.order_id) ? orderLink(d.order_id) : d.order_id || ""),
      el("td", { class: "mono" }, d.command_id || "")));
    fill($("#deadletters tbody"), rows, 6, "none");
    $("#dead-count").textContent = `(${page.total} in the stream${page.total > page.items.length ? `, newest ${page.items.length} shown` : ""})`;
  }

  async function renderDashboard() {
    const th = thresholds();
    const jobs = [renderCounts(), renderRate(), renderHealth(), renderDeadLetters()];
    if (th) jobs.push(...stuckLists.map((l) => renderStuck(l, th)));
    else report(new Error("thresholds must be Go durations such as 90m or 24h"));
    for (const r of await Promise.allSettled(jobs)) if (r.status === "rejected") report(r.reason);
  }

  // --- one order ----------------------------------------------------------

  let lifecycleSVG = null;
  async function lifecycle() {
    if (lifecycleSVG === null) {
      const resp = await fetch("/ui/lifecycle.svg");
      if (!resp.ok) throw new Error(`/ui/lifecycle.svg: ${resp.status}`);
      lifecycleSVG = await resp.text();
      $("#lifecycle").innerHTML = lifecycleSVG; // our own server's SVG, made from the domain's table
    }
  }

  function highlight(state, events) {
    const svg = $("#lifecycle svg");
    if (!svg) return;
    const visited = [];
    for (const e of events) if (e.state && visited[visited.length - 1] !== e.state) visited.push(e.state);
    svg.querySelectorAll(".state").forEach((g) => {
      g.classList.toggle("current", g.dataset.state === state);
      g.classList.toggle("visited", visited.includes(g.dataset.state));
    });
    svg.querySelectorAll(".edge").forEach((g) => {
      let taken = false;
      for (let i = 0; i < visited.length; i++) {
        const from = i === 0 ? "" : visited[i - 1];
        if (g.dataset.from === from && g.dataset.to === visited[i]) taken = true;
      }
      g.classList.toggle("taken", taken);
    });
  }

  function details(type, d) {
    if (!d || typeof d !== "object") return String(d);
    const m = (x) => (x && typeof x === "object" ? money(x.amount, x.currency) : "");
    switch (type) {
      case "OrderPlaced": return `customer ${d.customer_id}, ${(d.lines || []).length} line(s), total ${m(d.total)}`;
      case "PaymentSucceeded": return `${d.payment_id} ${m(d.amount)}${d.provider ? ` via ${d.provider}` : ""}${d.late ? " (late)" : ""}${d.extra ? " (extra)" : ""}`;
      case "PaymentAmountMismatched": return `${d.payment_id} ${m(d.amount)}, expected ${m(d.expected)}`;
      case "PaymentFailed": return `${d.payment_id}: ${d.reason || "failed"}`;
      case "OrderShipped": return `${d.carrier} ${d.tracking_number}`;
      case "RefundRequested": return `${d.refund_id} ${m(d.amount)}: ${d.reason}${d.automatic ? " (automatic)" : ""}`;
      case "RefundCompleted": return `${d.refund_id} ${m(d.amount)}`;
      case "RefundRejected": return `${d.refund_id}: ${d.reason}`;
      case "OrderRefunded": return m(d.amount);
      case "OrderCancelled": return d.reason || "";
      case "StockRejected": return `${d.reason}${d.skus ? ` (${d.skus.join(", ")})` : ""}`;
      default: {
        const s = JSON.stringify(d);
        return s === "{}" ? "" : s;
      }
    }
  }

  function renderOrderBody(id, summary, timeline) {
    const events = timeline.events;
    const state = timeline.state;
    $("#order-id").textContent = id;
    $("#order-state").textContent = state;
    $("#order-state").dataset.state = state;
    const s = summary;
    $("#order-summary").replaceChildren(s
      ? el("dl", { class: "kv" },
        el("dt", {}, "customer"), el("dd", {}, s.customer_id),
        el("dt", {}, "total"), el("dd", {}, money(s.total.amount, s.total.currency)),
        el("dt", {}, "lines"), el("dd", {}, (s.lines || []).map((l) => `${l.sku} × ${l.quantity} @ ${money(l.unit_price, s.total.currency)}`).join("; ")),
        el("dt", {}, "placed"), el("dd", {}, when(s.placed_at)),
        el("dt", {}, `in ${s.state} for`), el("dd", { class: "age" }, age(s.state_since)))
      : el("p", { class: "muted" }, "not in the read models yet; the timeline below is read from the event store"));
    highlight(state, events);
    fill($("#timeline tbody"), events.map((e) => el("tr", { "data-type": e.type, "data-state": e.state, class: e.problem ? "problem-row" : null },
      el("td", { class: "num" }, e.revision), el("td", {}, when(e.time)), el("td", {}, e.type), el("td", {}, e.state),
      el("td", {}, e.problem ? `${details(e.type, e.data)} — ${e.problem}` : details(e.type, e.data)),
      el("td", { class: "mono" }, e.command_id || ""))), 6, "no events");
    const cur = s ? s.total.currency : "";
    const pays = events.filter((e) => ["PaymentSucceeded", "PaymentFailed", "PaymentAmountMismatched"].includes(e.type));
    $("#payment-status").textContent = s ? `status ${s.payment.status}: paid ${money(s.payment.paid, cur)} of ${money(s.payment.amount_due, cur)}, refunded ${money(s.payment.refunded, cur)}` : "";
    fill($("#payments tbody"), pays.map((e) => el("tr", {},
      el("td", {}, when(e.time)), el("td", { class: "mono" }, e.data.payment_id),
      el("td", { class: "num" }, e.data.amount ? money(e.data.amount.amount, e.data.amount.currency) : ""),
      el("td", {}, e.type === "PaymentSucceeded" ? `succeeded${e.data.late ? " (late, refunded)" : ""}${e.data.extra ? " (extra, refunded)" : ""}`
        : e.type === "PaymentFailed" ? `failed: ${e.data.reason || ""}` : "amount mismatch (refunded)"))), 4, "no payments");
    const ships = events.filter((e) => e.type === "OrderShipped" || e.type === "OrderDelivered");
    $("#shipping-status").textContent = s ? `status ${s.shipping.status}` : "";
    fill($("#shipments tbody"), ships.map((e) => el("tr", {},
      el("td", {}, when(e.time)), el("td", {}, e.type === "OrderShipped" ? "shipped" : "delivered"),
      el("td", {}, e.data.carrier || ""), el("td", { class: "mono" }, e.data.tracking_number || ""))), 4, "not shipped");
    const refunds = s ? s.refunds || [] : [];
    fill($("#refunds tbody"), refunds.map((r) => el("tr", { "data-refund-id": r.refund_id, "data-status": r.status },
      el("td", { class: "mono" }, r.refund_id), el("td", { class: "num" }, money(r.amount, r.currency)),
      el("td", {}, r.status), el("td", {}, `${r.reason}${r.automatic ? " (automatic)" : ""}`), el("td", {}, when(r.requested_at)))), 5, "no refunds");
  }

  async function renderOrder(id) {
    const [summary, timeline, diagram] = await Promise.allSettled([getJSON(`/v1/orders/${id}`), getJSON(`/v1/orders/${id}/history`), lifecycle()]);
    if (diagram.status === "rejected") report(diagram.reason);
    if (timeline.status === "rejected") {
      report(timeline.reason);
      return;
    }
    if (summary.status === "rejected" && summary.reason.status !== 404) report(summary.reason);
    renderOrderBody(id, summary.status === "fulfilled" ? summary.value : null, timeline.value);
  }

  // --- routing and refresh ------------------------------------------------

  function route() {
    const m = location.hash.match(/^#\/orders\/([^/?#]+)$/);
    return m ? { view: "order", id: decodeURIComponent(m[1]).toLowerCase() } : { view: "dashboard" };
  }

  let running = false, again = false;
  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      const r = route();
      $("#dashboard").hidden = r.view !== "dashboard";
      $("#order").hidden = r.view !== "order";
      if (r.view === "order") {
        if (UUID.test(r.id)) await renderOrder(r.id);
        else report(new Error(`${r.id} is not an order ID (a UUID)`));
      } else {
        await renderDashboard();
      }
      $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      report(err);
    } finally {
      showProblems();
      running = false;
      if (again) { again = false; refresh(); }
    }
  }

  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("#search-id").value.trim();
    if (!UUID.test(id)) {
      problems.push(`${id || "(empty)"} is not an order ID (a UUID)`);
      showProblems();
      return;
    }
    location.hash = `#/orders/${id.toLowerCase()}`;
  });
  $("#admin-token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("#admin-token").value.trim();
    $("#admin-token").value = "";
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    refresh();
  });
  window.addEventListener("hashchange", refresh);
  setInterval(refresh, REFRESH_MS);
  refresh();
})();
