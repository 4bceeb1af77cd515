// Aegis web dashboard (SPEC §14.1): polls /status once a second and draws it. Every string from
// the snapshot reaches the page through textContent, never as markup. The admin token, asked for
// when an action (or a non-loopback /status) needs it, lives in this page's memory only.
"use strict";
(() => {
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  let token = null;
  let asking = null;
  let declined = false;
  let last = null;
  // Pools the operator folded (by name), kept across polls.
  const collapsed = new Set();

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  const num = (v) => (v === null || v === undefined ? "-" : v >= 100 ? Math.round(v).toString() : (+v.toFixed(1)).toString());
  const ms = (v) => (v === null || v === undefined ? "-" : v.toFixed(v < 10 ? 2 : 1));
  const clock = (unix) => new Date(unix * 1000).toISOString().slice(11, 19);
  function uptime(s) {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + Math.floor(s % 60) + "s";
  }
  function problem(text) {
    $("problem").hidden = !text;
    $("problem").textContent = text || "";
  }
  function notice(text, cls) {
    $("notice").hidden = false;
    $("notice").className = cls;
    $("notice").textContent = text;
  }

  function askToken(reason) {
    if (!asking) {
      asking = new Promise((resolve) => {
        const dialog = $("token-dialog");
        const input = $("token");
        const done = (value) => {
          dialog.close();
          asking = null;
          input.value = "";
          resolve(value);
        };
        $("token-form").onsubmit = (e) => { e.preventDefault(); done(input.value.trim() || null); };
        $("token-cancel").onclick = () => done(null);
        dialog.querySelector("label").title = reason;
        dialog.showModal();
        input.focus();
      });
    }
    return asking;
  }

  async function call(method, path) {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    return fetch(path, { method, headers, cache: "no-store", credentials: "omit" });
  }

  async function poll() {
    try {
      const res = await call("GET", "/status");
      if (res.status === 401) {
        token = null;
        problem("this admin listener needs the admin token to read /status");
        if (!declined) token = await askToken("reading /status needs the admin token");
        declined = !token;
        return;
      }
      if (!res.ok) {
        problem("/status answered " + res.status);
        return;
      }
      last = await res.json();
      problem(null);
      render(last);
    } catch (e) {
      problem("cannot reach Aegis (" + e.message + "); showing the last data");
    }
  }

  async function act(id, action) {
    if (!token) token = await askToken(action + " needs the admin token");
    if (!token) return;
    declined = false;
    try {
      const res = await call("POST", "/backends/" + id + "/" + action);
      if (res.status === 401) token = null;
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        notice(action + " " + id + ": " + res.status + " " + (body.error || ""), "bad");
        return;
      }
      notice(body.url + " " + body.admin_state, "ok");
      poll();
    } catch (e) {
      notice(action + " " + id + ": " + e.message, "bad");
    }
  }

  function render(s) {
    $("version").textContent = s.version;
    const t = s.totals;
    const classes = Object.entries(t.responses).map(([k, v]) => k + " " + v).join("  ");
    const refused = Object.values(t.refusals).reduce((a, b) => a + b, 0);
    $("summary").textContent = "listening on " + s.listen + " · up " + uptime(s.uptime_secs) +
      " · " + t.requests + " requests · " + num(t.requests_per_sec) + " req/s · in-flight " +
      t.in_flight + " · websockets " + (t.websocket_tunnels || 0) + " · " + classes + " · refused " + refused + (s.draining ? " · DRAINING" : "");
    renderConfig(s.config);
    renderBackends(s.backends, s.pools || []);
    renderRate(s.rate_limit);
    renderCluster(s.cluster);
    renderAcme(s.acme || []);
    renderEvents(s.events);
    chart($("rps"), [{ values: s.requests_per_sec_history, color: "--p50" }]);
    const lat = s.latency_history || [];
    chart($("latency"), [
      { values: lat.map((p) => p.p50_ms), color: "--p50" },
      { values: lat.map((p) => p.p95_ms), color: "--p95" },
      { values: lat.map((p) => p.p99_ms), color: "--p99" },
    ]);
  }

  function renderConfig(c) {
    const p = $("config");
    p.hidden = !c;
    if (!c) return;
    const parts = ["config generation " + c.generation, c.path, "loaded " + clock(c.loaded_at_unix),
      "sha256 " + String(c.sha256).slice(0, 12)];
    const r = c.last_reload;
    if (r) parts.push("last reload " + clock(r.at_unix) + " (" + r.trigger + "): " + r.result);
    p.replaceChildren(el("span", parts.join(" · "), r && r.result !== "applied" ? "bad" : ""));
    for (const e of (r && r.errors) || []) p.append(el("div", e, "bad"));
  }

  function stateCell(b) {
    if (b.admin_state === "drained") return el("td", "drained", "drained");
    return b.healthy ? el("td", "healthy", "ok") : el("td", "unhealthy", "bad");
  }

  const errClass = (rate) => (rate >= 0.05 ? "bad" : rate >= 0.01 ? "warn" : "");

  // With named pools (§17) the backends are drawn in one section per pool, headed by the pool's
  // name, up count, req/s, P95 and error rate; with only the default pool, in one table as before.
  // A pool without backends (an unused default) gets no section.
  function renderBackends(backends, pools) {
    $("backend-count").textContent = "(" + backends.length + ")";
    const grouped = pools.some((p) => p.name !== "default");
    $("backends").hidden = grouped;
    $("pools").hidden = !grouped;
    if (!grouped) {
      $("backends").tBodies[0].replaceChildren(...backends.map(backendRow));
      $("pools").replaceChildren();
      return;
    }
    $("backends").tBodies[0].replaceChildren();
    $("backend-count").textContent = "(" + backends.length + " in " + pools.filter((p) => p.backends.length).length + " pools)";
    const sections = pools.filter((p) => p.backends.length).map((p) => {
      const mine = backends.filter((b) => b.pool === p.name);
      const total = p.backends.length;
      const state = p.up === 0 ? "bad" : p.up < total ? "warn" : "ok";
      const details = el("details", null, "pool");
      details.dataset.pool = p.name;
      // all up, some down, all down (a class would colour the whole section)
      details.dataset.state = { ok: "up", warn: "degraded", bad: "down" }[state];
      details.open = !collapsed.has(p.name);
      const summary = el("summary");
      // A click (or Enter/Space) on the heading is seen before it toggles the section: recorded
      // at once, so a poll drawing meanwhile keeps the operator's choice.
      summary.onclick = () => (details.open ? collapsed.add(p.name) : collapsed.delete(p.name));
      summary.append(el("strong", p.name, "name"),
        el("span", p.up === 0 ? "all down (0/" + total + " up)" : p.up + "/" + total + " up", "up " + state),
        el("span", num(p.requests_per_sec) + " req/s", "rps"),
        el("span", "P95 " + ms(p.p95_ms) + " ms", "p95"),
        el("span", "err " + ((p.error_rate || 0) * 100).toFixed(1) + "%", "err " + errClass(p.error_rate || 0)));
      if (p.adaptive) {
        const a = p.adaptive;
        summary.append(el("span", "adaptive " + num(a.rate) + "/s (" + a.last_decision + ")", "adaptive"));
      }
      const table = el("table", null, "backends");
      table.append($("backends").tHead.cloneNode(true), el("tbody"));
      table.tBodies[0].append(...mine.map(backendRow));
      details.append(summary, table);
      return details;
    });
    $("pools").replaceChildren(...sections);
  }

  function backendRow(b) {
    const tr = el("tr");
    tr.dataset.id = b.id;
    const breaker = { closed: "ok", "half-open": "warn", open: "bad" }[b.breaker] || "";
    const err = errClass(b.error_rate);
    tr.append(
      el("td", b.url), stateCell(b), el("td", b.breaker, breaker),
      el("td", b.warmup_percent + "%", b.warmup_percent < 100 ? "warn" : ""),
      el("td", b.weight, "n"), el("td", num(b.effective_weight), "n"),
      el("td", num(b.requests_per_sec), "n"), el("td", ms(b.p50_ms), "n"),
      el("td", ms(b.p95_ms), "n"), el("td", ms(b.p99_ms), "n"),
      el("td", (b.error_rate * 100).toFixed(1), "n " + err), el("td", b.in_flight, "n"));
    const action = b.admin_state === "drained" ? "enable" : "drain";
    const button = el("button", action === "drain" ? "Drain" : "Enable");
    button.dataset.action = action;
    button.onclick = () => act(b.id, action);
    const cell = el("td");
    if (/^[A-Za-z0-9.:\[\]_-]+$/.test(b.id || "")) cell.append(button);
    tr.append(cell);
    return tr;
  }

  function pairs(dl, entries) {
    dl.replaceChildren();
    for (const [k, v, cls] of entries) dl.append(el("dt", k), el("dd", v, cls));
  }

  function renderRate(r) {
    $("rate-title").textContent = r.adaptive_enabled ? "Rate limit · adaptive" : "Rate limit";
    const entries = [
      ["rate", num(r.current_rate) + "/s  burst " + r.burst + "  min " + num(r.min_rate) + " max " + num(r.max_rate)],
      ["429/s", num(r.limited_per_sec) + "  limited clients " + r.limited_clients],
    ];
    if (r.adaptive_enabled) {
      const over = r.p95_ms !== null && r.p95_ms > r.threshold_ms;
      entries.push(["P95", ms(r.p95_ms) + " ms / threshold " + ms(r.threshold_ms) + " ms", over ? "bad" : "ok"]);
      const cls = { reduce: "warn", recover: "ok" }[r.last_decision] || "";
      entries.push(["decision", r.last_decision + (r.last_reason ? " — " + r.last_reason : ""), cls]);
    } else {
      entries.push(["adaptive", "off"]);
    }
    pairs($("rate"), entries);
  }

  function renderCluster(c) {
    $("cluster-panel").hidden = !c;
    if (!c) return;
    pairs($("cluster"), [
      ["instance", c.instance],
      ["redis", c.redis_up ? "up " + c.redis_url : "DOWN: local limits (" + c.redis_url + ")", c.redis_up ? "ok" : "bad"],
      ["instances", c.instances.length + ": " + c.instances.join(", ")],
      ["lease", c.lease_holder === null ? "-" : c.lease_holder + (c.lease_holder === c.instance ? " (this)" : "")],
      ["sync lag", c.sync_lag_ms === null ? "-" : num(c.sync_lag_ms) + " ms  errors " + c.sync_errors],
    ]);
  }

  function renderAcme(certificates) {
    $("acme-panel").hidden = !certificates.length;
    pairs($("acme"), certificates.map((c) => [
      c.domains.join(", "),
      c.state + (c.not_after_unix ? " until " + new Date(c.not_after_unix * 1000).toISOString() : "") +
        (c.consecutive_failures ? " · " + c.consecutive_failures + " failed: " + (c.last_error || "") : ""),
      c.consecutive_failures ? "bad" : "ok",
    ]));
  }

  function renderEvents(events) {
    const items = events.slice().reverse().map((e) => {
      const li = el("li", null, e.level);
      li.append(el("time", clock(e.at_unix)), el("span", e.level.toUpperCase() + " " + e.message));
      return li;
    });
    if (!items.length) items.push(el("li", "no events yet"));
    $("events").replaceChildren(...items);
  }

  function chart(canvas, series) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 14;
    const style = getComputedStyle(document.documentElement);
    ctx.clearRect(0, 0, w, h);
    const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
    const max = Math.max(1, ...values);
    ctx.fillStyle = style.getPropertyValue("--dim");
    ctx.font = "11px monospace";
    ctx.fillText(num(max), 4, 11);
    const x = (i) => w - (60 - i) * (w / 60);
    const y = (v) => h - 2 - (v / max) * (h - pad - 2);
    for (const s of series) {
      const offset = 60 - s.values.length;
      ctx.strokeStyle = style.getPropertyValue(s.color);
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let open = false;
      s.values.forEach((v, i) => {
        if (v === null || v === undefined) { open = false; return; }
        if (open) ctx.lineTo(x(offset + i), y(v)); else ctx.moveTo(x(offset + i), y(v));
        open = true;
      });
      ctx.stroke();
    }
  }

  poll();
  setInterval(() => { if (!asking) poll(); }, POLL_MS);
})();
