// Boxoffice organizer page: create and edit events, watch a sale live over Socket.IO
// (join-sales-dashboard -> sales-dashboard), list, filter and cancel its orders, export them
// as CSV and read the audit trail. Plain JS, no build step; the chart is drawn by hand.
"use strict";

(() => {
  const HISTORY = 240; // chart points kept (one per update, at most four a second)
  const state = {
    token: null,
    user: null,
    socket: null,
    events: new Map(), // my events by id
    editing: null, // event id being edited, or null for a new one
    current: null, // event id on the dashboard
    board: null, // last sales-dashboard payload
    history: [], // [{t, sold, held, total}]
    orders: [],
    ordersTimer: null,
  };

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  };

  function say(text) {
    $("message").textContent = text || "";
  }

  function toast(text, kind = "success", ms = 5000) {
    const node = el("div", { class: `toast toast-${kind}`, "data-testid": "toast", role: "alert", text });
    $("toasts").append(node);
    setTimeout(() => node.remove(), ms);
  }

  // The shared client (api.js); any 401 while logged in ends the session.
  const { request, api, logIn } = BoxofficeApi.client({
    token: () => state.token,
    onUnauthorized: () => endSession("Your session has expired."),
  });

  // -- session -----------------------------------------------------------------------------

  function startSession(token, user) {
    state.token = token;
    state.user = user;
    BoxofficeApi.session.save(token, user);
    $("whoami").textContent = `${user.username} (${user.role})`;
    $("session").hidden = false;
    $("auth-panel").hidden = true;
    $("app-panel").hidden = false;
    if (user.role !== "organizer") say("Only organizers can create events and watch their sales.");
    connectSocket();
    loadMyEvents();
  }

  function endSession(reason) {
    if (state.socket) state.socket.disconnect();
    Object.assign(state, { token: null, user: null, socket: null, current: null, board: null });
    BoxofficeApi.session.forget();
    $("session").hidden = true;
    $("auth-panel").hidden = false;
    $("app-panel").hidden = true;
    say(reason || "");
  }

  function connectSocket() {
    const socket = io("/realtime", { auth: { token: state.token } });
    state.socket = socket;
    const status = $("conn-status");
    socket.on("connected", () => {
      status.dataset.state = "connected";
      status.textContent = "live";
      if (state.current !== null) socket.emit("join-sales-dashboard", { eventId: state.current });
    });
    socket.on("disconnect", () => {
      status.dataset.state = "disconnected";
      status.textContent = "offline";
    });
    socket.on("connect_error", (err) => {
      status.dataset.state = "disconnected";
      status.textContent = "offline";
      if (err && err.message === "Unauthorized") endSession("Your session has expired.");
    });
    socket.on("error", (data) => say((data && data.message) || "Realtime error"));
    socket.on("sales-dashboard", renderBoard);
  }

  // -- my events ---------------------------------------------------------------------------

  async function loadMyEvents() {
    try {
      const mine = [];
      for (let offset = 0; offset < 100 * 50; offset += 100) {
        const page = await api(`/events?limit=100&offset=${offset}`);
        for (const event of page) if (event.createdBy === state.user.id) mine.push(event);
        if (page.length < 100) break;
      }
      state.events = new Map(mine.map((event) => [event.idEvent, event]));
      const list = $("my-events");
      list.replaceChildren();
      for (const event of mine) {
        list.append(el("li", { "data-testid": `my-event-${event.idEvent}`,
          class: event.idEvent === state.current ? "selected" : "" },
          el("span", { text: `${event.eventName} · ${new Date(event.eventDate).toLocaleString()}` }),
          el("button", { class: "small", type: "button", "data-testid": `open-${event.idEvent}`,
            text: "Dashboard", onclick: () => openDashboard(event.idEvent) })));
      }
      $("no-events").hidden = mine.length > 0;
    } catch (err) {
      say(`Could not load events: ${err.message}`);
    }
  }

  // -- the editor --------------------------------------------------------------------------

  const localValue = (iso) => {
    if (!iso) return "";
    const date = new Date(iso);
    return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  };
  const isoValue = (local) => (local ? new Date(local).toISOString() : null);

  function categoryRow(values = {}) {
    const index = $("category-rows").children.length;
    const input = (name, attrs) => el("input", { "data-testid": `cat-${name}-${index}`, ...attrs });
    return el("tr", {},
      el("td", {}, input("name", { required: "", maxlength: "100", value: values.name || "" })),
      el("td", {}, input("price", { type: "number", min: "0", step: "0.01", required: "",
        value: values.price ?? "50" })),
      el("td", {}, input("seats", { type: "number", min: "1", step: "1", required: "",
        value: values.seats ?? "100" })),
      el("td", {}, input("max", { type: "number", min: "1", step: "1", placeholder: "no limit" })),
      el("td", {}, el("button", { type: "button", class: "small secondary", text: "×",
        onclick: (e) => e.target.closest("tr").remove() })));
  }

  function openEditor(eventId = null) {
    state.editing = eventId;
    const event = eventId === null ? null : state.events.get(eventId);
    $("editor").hidden = false;
    $("editor-title").textContent = event ? `Edit ${event.eventName}` : "New event";
    $("save-event").textContent = event ? "Save changes" : "Create event";
    $("f-name").value = event ? event.eventName : "";
    $("f-category").value = event ? event.eventCategory : "Music";
    $("f-date").value = event ? localValue(event.eventDate) : "";
    $("f-location").value = event ? event.location || "" : "";
    $("f-description").value = event ? event.description || "" : "";
    $("f-start").value = event ? localValue(event.salesStartAt) : "";
    $("f-end").value = event ? localValue(event.salesEndAt) : "";
    $("f-active").checked = event ? event.isActive : true;
    $("active-label").hidden = !event;
    $("categories-fieldset").hidden = Boolean(event);
    $("categories-note").hidden = !event;
    const rows = $("category-rows");
    rows.replaceChildren();
    if (!event) rows.append(categoryRow({ name: "General" }));
    $("f-name").focus();
  }

  async function saveEvent(e) {
    e.preventDefault();
    const common = {
      eventName: $("f-name").value.trim(),
      eventCategory: $("f-category").value.trim(),
      eventDate: isoValue($("f-date").value),
      location: $("f-location").value.trim() || null,
      description: $("f-description").value.trim() || null,
      salesStartAt: isoValue($("f-start").value),
      salesEndAt: isoValue($("f-end").value),
    };
    try {
      let saved;
      if (state.editing === null) {
        const categories = [...$("category-rows").children].map((row) => {
          const [name, price, seats, max] = row.querySelectorAll("input");
          return { categoryName: name.value.trim(), price: Number(price.value),
            totalSeats: Number(seats.value), ...(max.value ? { maxPerUser: Number(max.value) } : {}) };
        });
        const body = { ...common, ticketCategories: categories };
        for (const key of ["location", "description", "salesStartAt", "salesEndAt"]) {
          if (body[key] === null) delete body[key];
        }
        saved = await api("/events", { method: "POST", body });
        toast(`Created ${saved.eventName}`);
      } else {
        saved = await api(`/events/${state.editing}`, { method: "PUT",
          body: { ...common, isActive: $("f-active").checked } });
        toast(`Saved ${saved.eventName}`);
      }
      $("editor").hidden = true;
      say("");
      await loadMyEvents();
      openDashboard(saved.idEvent);
    } catch (err) {
      say(`Could not save: ${err.message}`);
    }
  }

  // -- the dashboard -----------------------------------------------------------------------

  function openDashboard(eventId) {
    if (state.socket && state.current !== null && state.current !== eventId) {
      state.socket.emit("leave-sales-dashboard", { eventId: state.current });
    }
    state.current = eventId;
    state.board = null;
    state.history = [];
    const event = state.events.get(eventId);
    $("dashboard").hidden = false;
    $("dash-title").textContent = event ? event.eventName : `Event ${eventId}`;
    $("dash-rows").replaceChildren();
    for (const li of $("my-events").children) {
      li.classList.toggle("selected", li.dataset.testid === `my-event-${eventId}`);
    }
    if (state.socket && state.socket.connected) {
      state.socket.emit("join-sales-dashboard", { eventId });
    }
    loadOrders();
    loadAudit();
    drawChart();
  }

  function renderBoard(board) {
    if (board.eventId !== state.current) return;
    const before = state.board;
    state.board = board;
    const totals = board.totals;
    $("dash-title").textContent = board.eventName;
    $("dash-at").textContent = `updated ${new Date(board.at).toLocaleTimeString()}`;
    for (const key of ["sold", "held", "available", "waiting"]) $(`kpi-${key}`).textContent = totals[key];
    $("kpi-opm").textContent = totals.ordersPerMinute;
    $("kpi-revenue").textContent = totals.revenue;
    const rows = $("dash-rows");
    rows.replaceChildren();
    for (const c of board.categories) {
      const share = c.total ? Math.round((100 * c.sold) / c.total) : 0;
      rows.append(el("tr", { "data-testid": `dash-row-${c.categoryId}` },
        el("td", { text: c.categoryName }),
        el("td", { class: "num", text: c.price }),
        el("td", { class: "num", "data-testid": `dash-sold-${c.categoryId}`, text: String(c.sold) }),
        el("td", { class: "num", "data-testid": `dash-held-${c.categoryId}`, text: String(c.held) }),
        el("td", { class: "num", "data-testid": `dash-available-${c.categoryId}`,
          text: String(c.available) }),
        el("td", { class: "num", text: String(c.total) }),
        el("td", { class: "num", text: String(c.waiting) }),
        el("td", { class: "num", text: c.revenue }),
        el("td", {}, el("div", { class: "bar", title: `${share}% sold` },
          el("span", { style: `width:${share}%` })))));
    }
    state.history.push({ t: Date.parse(board.at), sold: totals.sold, held: totals.held,
      total: totals.total, opm: totals.ordersPerMinute });
    if (state.history.length > HISTORY) state.history.shift();
    drawChart();
    if (!before || before.totals.sold !== totals.sold) scheduleOrders();
  }

  function drawChart() {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 1000;
    const height = canvas.clientHeight || 180;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const points = state.history;
    const pad = { left: 40, right: 10, top: 10, bottom: 20 };
    const w = width - pad.left - pad.right;
    const h = height - pad.top - pad.bottom;
    const top = Math.max(1, ...points.map((p) => p.total));
    ctx.strokeStyle = "#e5e7eb";
    ctx.fillStyle = "#6b7280";
    ctx.font = "11px system-ui, sans-serif";
    for (const frac of [0, 0.5, 1]) {
      const y = pad.top + h - frac * h;
      ctx.beginPath(); ctx.moveTo(pad.left, y); ctx.lineTo(pad.left + w, y); ctx.stroke();
      ctx.fillText(String(Math.round(frac * top)), 4, y + 4);
    }
    if (points.length === 0) return;
    const t0 = points[0].t;
    const span = Math.max(1000, points[points.length - 1].t - t0);
    const x = (p) => pad.left + ((p.t - t0) / span) * w;
    const y = (v) => pad.top + h - (v / top) * h;
    const line = (key, color) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(x(p), y(p[key])) : ctx.moveTo(x(p), y(p[key]))));
      if (points.length === 1) ctx.lineTo(pad.left + w, y(points[0][key]));
      ctx.stroke();
    };
    line("held", "#c27c0e");
    line("sold", "#1f9d55");
    ctx.fillStyle = "#1f9d55"; ctx.fillText("sold", pad.left + 6, pad.top + 12);
    ctx.fillStyle = "#c27c0e"; ctx.fillText("held", pad.left + 40, pad.top + 12);
    ctx.fillStyle = "#6b7280";
    ctx.fillText(`${Math.round(span / 1000)} s`, pad.left + w - 30, height - 4);
  }

  // -- orders, export, audit -----------------------------------------------------------------

  function scheduleOrders() {
    if (state.ordersTimer !== null) return;
    state.ordersTimer = setTimeout(() => {
      state.ordersTimer = null;
      loadOrders();
    }, 1000);
  }

  async function loadOrders() {
    const eventId = state.current;
    if (eventId === null) return;
    try {
      const orders = await api(`/orders/event/${eventId}?limit=1000`);
      if (eventId !== state.current) return;
      state.orders = orders;
      renderOrders();
    } catch (err) {
      say(`Could not load orders: ${err.message}`);
    }
  }

  function renderOrders() {
    const status = $("order-status").value;
    const needle = $("order-search").value.trim().toLowerCase();
    const rows = $("order-rows");
    rows.replaceChildren();
    for (const order of state.orders) {
      if (status && order.status !== status) continue;
      const text = `#${order.id} ${order.userId} ${order.categoryName} ${order.notes || ""}`;
      if (needle && !text.toLowerCase().includes(needle)) continue;
      const cancel = order.status === "cancelled" ? "" : el("button", { type: "button",
        class: "small secondary", "data-testid": `cancel-${order.id}`, text: "Cancel",
        onclick: () => cancelOrder(order) });
      rows.append(el("tr", { "data-testid": `order-row-${order.id}`, "data-status": order.status,
        class: order.status },
        el("td", { text: `#${order.id}` }),
        el("td", { text: new Date(order.createdAt).toLocaleTimeString() }),
        el("td", { text: `user ${order.userId}` }),
        el("td", { text: order.categoryName }),
        el("td", { class: "num", text: String(order.quantity) }),
        el("td", { class: "num", text: Number(order.totalPrice).toFixed(2) }),
        el("td", {}, el("span", { class: `status status-${order.status}`, text: order.status })),
        el("td", {}, cancel)));
    }
  }

  async function cancelOrder(order) {
    if (!window.confirm(`Cancel order #${order.id}? Its seats go back on sale.`)) return;
    try {
      await api(`/orders/${order.id}/cancel`, { method: "POST" });
      toast(`Order #${order.id} cancelled`);
      loadOrders();
      loadAudit();
    } catch (err) {
      say(`Could not cancel: ${err.message}`);
    }
  }

  async function exportCsv() {
    const eventId = state.current;
    const response = await request(`/orders/event/${eventId}/export?format=csv`);
    if (!response.ok) return say(`Export failed: ${response.status}`);
    const blob = await response.blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: `event-${eventId}-orders.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  async function loadAudit() {
    const eventId = state.current;
    if (eventId === null) return;
    try {
      const page = await api(`/events/${eventId}/audit?limit=50`);
      const list = $("audit-list");
      list.replaceChildren();
      for (const entry of page.items) {
        list.append(el("li", { "data-testid": `audit-${entry.id}`, "data-action": entry.action },
          el("span", { class: "muted", text: new Date(entry.createdAt).toLocaleString() }),
          el("strong", { text: entry.action }),
          el("span", { text: entry.actorId === null ? "by the system" : `by user ${entry.actorId}` }),
          el("code", { text: JSON.stringify(entry.details).slice(0, 160) })));
      }
    } catch (err) {
      say(`Could not load the audit trail: ${err.message}`);
    }
  }

  // -- wiring ------------------------------------------------------------------------------

  $("auth-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const { token, user } = await logIn($("username").value.trim(), $("password").value);
      startSession(token, user);
    } catch (err) {
      say(`Login failed: ${err.message}`);
    }
  });
  $("logout-btn").addEventListener("click", () => endSession(""));
  $("new-event").addEventListener("click", () => openEditor(null));
  $("edit-event").addEventListener("click", () => openEditor(state.current));
  $("cancel-edit").addEventListener("click", () => { $("editor").hidden = true; });
  $("add-category").addEventListener("click", () => $("category-rows").append(categoryRow()));
  $("event-form").addEventListener("submit", saveEvent);
  $("refresh-events").addEventListener("click", loadMyEvents);
  $("refresh-orders").addEventListener("click", loadOrders);
  $("refresh-audit").addEventListener("click", loadAudit);
  $("order-status").addEventListener("change", renderOrders);
  $("order-search").addEventListener("input", renderOrders);
  $("export-csv").addEventListener("click", exportCsv);
  window.addEventListener("resize", drawChart);

  BoxofficeApi.session.resume(startSession);
})();
