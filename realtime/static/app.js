// Boxoffice browser client: log in, browse events, watch live availability over Socket.IO,
// lock seats with a countdown, buy with the lock, and see order notifications. No build step.
"use strict";

(() => {
  const state = {
    token: null,
    user: null,
    socket: null,
    events: new Map(), // eventId -> event from GET /api/events
    currentEventId: null,
    locks: new Map(), // lockId -> {lockId, eventId, categoryId, quantity, expiresAt (ms)}
    clockOffsetMs: 0, // server time minus browser time, from heartbeats
    waiting: new Map(), // categoryId -> {position, waiting} while on its waiting list
    available: new Map(), // categoryId -> availableTickets, as last heard
    passes: new Map(), // eventId -> admission pass from the event's waiting room
    queue: new Map(), // eventId -> {first position seen, last status} while queued
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

  // -- feedback ----------------------------------------------------------------------------

  function say(text) {
    $("message").textContent = text || "";
  }

  function toast(text, kind = "success", ms = 6000, source = "page") {
    const node = el("div", { class: `toast toast-${kind}`, "data-testid": "toast", role: "alert",
      "data-source": source, text });
    $("toasts").append(node);
    setTimeout(() => node.remove(), ms);
  }

  // -- REST --------------------------------------------------------------------------------

  // The shared client (api.js). A 401 does not end the session by itself here: `loadOrders` and
  // the socket's refusal do.
  const rest = BoxofficeApi.client({ token: () => state.token });
  const { api } = rest;

  // -- session -----------------------------------------------------------------------------

  async function logIn(username, password) {
    const { token, user } = await rest.logIn(username, password);
    startSession(token, user);
  }

  async function register(username, password, role) {
    await api("/auth/register", { method: "POST", body: { username, password, role } });
    await logIn(username, password);
  }

  function startSession(token, user) {
    state.token = token;
    state.user = user;
    BoxofficeApi.session.save(token, user);
    $("whoami").textContent = `${user.username} (${user.role})`;
    $("session").hidden = false;
    $("auth-panel").hidden = true;
    $("app-panel").hidden = false;
    say("");
    connectSocket();
    loadEvents();
    loadOrders();
  }

  function endSession(reason) {
    if (state.socket) state.socket.disconnect();
    state.socket = null;
    state.token = null;
    state.user = null;
    state.locks.clear();
    state.currentEventId = null;
    BoxofficeApi.session.forget();
    $("session").hidden = true;
    $("auth-panel").hidden = false;
    $("app-panel").hidden = true;
    $("event-panel").hidden = true;
    renderLocks();
    say(reason || "");
  }

  // -- socket ------------------------------------------------------------------------------

  function connectSocket() {
    // The page is served by the gateway, so the socket goes to the same origin.
    const socket = io("/realtime", { auth: { token: state.token } });
    state.socket = socket;
    const status = $("conn-status");

    socket.on("connected", () => {
      status.dataset.state = "connected";
      status.textContent = "live";
      if (state.currentEventId !== null) {
        socket.emit("join-event-room", { eventId: state.currentEventId });
        const event = state.events.get(state.currentEventId);
        if (event) enterQueueIfNeeded(event, state.currentEventId);
      }
      socket.emit("get-my-locks");
      socket.emit("heartbeat");
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
    socket.on("availability-update", applyAvailability);
    socket.on("lock-tickets-response", (reply) => {
      if (!reply.success) return say(reply.message);
      say("");
      rememberLock(reply);
    });
    socket.on("unlock-tickets-response", (reply) => {
      if (!reply.success) return say(reply.message);
      for (const lockId of reply.lockIds || []) state.locks.delete(lockId);
      renderLocks();
    });
    socket.on("my-locks-response", (reply) => {
      state.locks.clear();
      for (const lock of reply.locks || []) rememberLock(lock, false);
      renderLocks();
    });
    socket.on("heartbeat-response", (reply) => {
      state.clockOffsetMs = Date.parse(reply.timestamp) - Date.now();
    });
    socket.on("order-completed", (data) => {
      toast(data.message || `Order #${data.orderId} completed`, "success", 8000, "order-completed");
      loadOrders();
    });
    socket.on("join-waitlist-response", (reply) => {
      if (!reply.success) return say(reply.message);
      say("");
      state.waiting.set(reply.categoryId, reply);
      renderFairness();
    });
    socket.on("leave-waitlist-response", (reply) => {
      if (!reply.success) return say(reply.message);
      state.waiting.delete(reply.categoryId);
      renderFairness();
    });
    socket.on("waitlist-position", (update) => {
      state.waiting.set(update.categoryId, update);
      renderFairness();
    });
    socket.on("waitlist-offer", (offer) => {
      state.waiting.delete(offer.categoryId);
      rememberLock(offer);
      renderFairness();
      offerToast(offer);
    });
    socket.on("join-queue-response", (reply) => {
      if (!reply.success) return say(reply.message);
      showQueueStatus(reply);
    });
    socket.on("queue-status", showQueueStatus);
    socket.on("queue-admitted", admitted);
    socket.on("queue-closed", (data) => {
      state.queue.delete(data.eventId);
      if (data.eventId !== state.currentEventId) return;
      $("queue-position").textContent = "Sold out";
      $("queue-eta").textContent = data.message;
      $("queue-panel").dataset.state = "closed";
    });
    socket.on("order-cancelled", (data) => {
      toast(data.message || `Order #${data.orderId} cancelled`, "error", 8000, "order-cancelled");
      loadOrders();
    });
  }

  setInterval(() => {
    if (state.socket && state.socket.connected) state.socket.emit("heartbeat");
  }, 30000);

  // -- events and availability -------------------------------------------------------------

  async function loadEvents() {
    try {
      const events = await api("/events");
      state.events.clear();
      const list = $("events-list");
      list.replaceChildren();
      for (const event of events) {
        const id = event.idEvent ?? event.id;
        state.events.set(id, event);
        const when = new Date(event.eventDate).toLocaleString();
        list.append(el("li", { "data-testid": `event-${id}`,
          class: id === state.currentEventId ? "active-event" : "" },
          el("span", { text: `${event.eventName} · ${when}` }),
          el("button", { type: "button", class: "small", "data-testid": `join-event-${id}`,
            text: "Open", onclick: () => openEvent(id) })));
      }
      if (!events.length) list.append(el("li", { class: "muted", text: "No events yet." }));
    } catch (err) {
      say(`Could not load events: ${err.message}`);
    }
  }

  function openEvent(eventId) {
    const event = state.events.get(eventId);
    if (!event) return;
    if (state.socket && state.currentEventId !== null && state.currentEventId !== eventId) {
      state.socket.emit("leave-event-room", { eventId: state.currentEventId });
    }
    state.currentEventId = eventId;
    for (const item of $("events-list").children) {
      item.classList.toggle("active-event", item.dataset.testid === `event-${eventId}`);
    }
    $("event-panel").hidden = false;
    $("event-panel").dataset.eventId = String(eventId);
    $("event-title").textContent = event.eventName;
    $("event-meta").textContent = [new Date(event.eventDate).toLocaleString(), event.location]
      .filter(Boolean).join(" · ");
    const body = $("categories-body");
    body.replaceChildren();
    for (const category of event.ticketCategories || []) {
      const cid = category.id;
      const quantity = el("input", { type: "number", min: "1", value: "1",
        "data-testid": `qty-${cid}`, "aria-label": `Seats of ${category.categoryName}` });
      body.append(el("tr", { "data-testid": `category-${cid}` },
        el("td", { text: category.categoryName }),
        el("td", { class: "num", text: Number(category.price).toFixed(2) }),
        el("td", { class: "num", "data-testid": `available-${cid}`,
          text: String(category.availableSeats ?? "…") }),
        el("td", { class: "num", "data-testid": `locked-${cid}`, text: "…" }),
        el("td", { class: "num", "data-testid": `total-${cid}`,
          text: String(category.totalSeats) }),
        el("td", {}, quantity),
        el("td", {}, el("button", { type: "button", "data-testid": `lock-${cid}`, text: "Lock",
          onclick: () => lockSeats(eventId, cid, Number(quantity.value)) })),
        fairnessCell(event, category, quantity)));
    }
    renderFairness();
    if (state.socket) state.socket.emit("join-event-room", { eventId });
    enterQueueIfNeeded(event, eventId);
  }

  // -- the waiting room ----------------------------------------------------------------------

  function queued(event) {
    return Boolean(event.waitingRoom && event.waitingRoom.enabled);
  }

  function enterQueueIfNeeded(event, eventId) {
    const waiting = queued(event) && !state.passes.has(eventId);
    $("queue-panel").hidden = !waiting;
    $("categories").hidden = waiting;
    if (!waiting) return;
    $("queue-panel").dataset.state = "joining";
    $("queue-position").textContent = "Joining the queue…";
    $("queue-eta").textContent = "";
    $("queue-progress").removeAttribute("value");
    if (state.socket && state.socket.connected) {
      state.socket.emit("join-queue", { eventId });
    }
  }

  function showQueueStatus(status) {
    if (status.admitted || status.eventId !== state.currentEventId) return;
    const seen = state.queue.get(status.eventId) || { first: null };
    if (status.position !== null && seen.first === null) seen.first = status.position;
    state.queue.set(status.eventId, seen);
    const panel = $("queue-panel");
    panel.dataset.state = status.position === null ? "before-opening" : "waiting";
    const progress = $("queue-progress");
    if (status.position === null) {
      $("queue-position").textContent = `${status.waiting} in the queue`;
      $("queue-eta").textContent =
        `Places are drawn at random at ${new Date(status.opensAt).toLocaleTimeString()}`;
      progress.removeAttribute("value");
      return;
    }
    $("queue-position").textContent = `You are #${status.position} in line`;
    $("queue-eta").textContent = status.etaSeconds > 0
      ? `About ${Math.ceil(status.etaSeconds)} s to go` : "Any moment now";
    const done = seen.first > 1 ? (seen.first - status.position) / (seen.first - 1) : 1;
    progress.value = Math.round(Math.max(0, Math.min(1, done)) * 100);
  }

  function admitted(data) {
    state.passes.set(data.eventId, data.admissionPass);
    state.queue.delete(data.eventId);
    toast("You are in: buy before your pass expires", "success", 6000, "queue-admitted");
    if (data.eventId !== state.currentEventId) return;
    $("queue-panel").hidden = true;
    $("categories").hidden = false;
  }

  function applyAvailability(update) {
    if (update.eventId !== state.currentEventId) return;
    state.available.set(update.categoryId, update.availableTickets);
    renderFairness();
    const cells = {
      available: update.availableTickets, locked: update.lockedTickets, total: update.totalTickets,
    };
    for (const [name, value] of Object.entries(cells)) {
      const cell = document.querySelector(`[data-testid="${name}-${update.categoryId}"]`);
      if (!cell || cell.textContent === String(value)) continue;
      cell.textContent = String(value);
      cell.classList.remove("flash");
      void cell.offsetWidth; // restart the animation
      cell.classList.add("flash");
    }
  }

  // -- fair sales: the window, the limit, the waiting list ------------------------------------
  // Display only: the category actor decides; the page shows what it will decide.

  function windowOf(event, category) {
    const times = (a, b, pick) => [a, b].filter(Boolean).map(Date.parse).reduce(pick, undefined);
    const later = (x, y) => (x === undefined || y > x ? y : x);
    const earlier = (x, y) => (x === undefined || y < x ? y : x);
    return {
      opens: times(event.salesStartAt, category.salesStartAt, later),
      closes: times(event.salesEndAt, category.salesEndAt, earlier),
    };
  }

  function fairnessCell(event, category, quantity) {
    const cid = category.id;
    const span = windowOf(event, category);
    state.available.set(cid, category.availableSeats);
    return el("td", { class: "fair" },
      el("div", { class: "sale-window", "data-testid": `window-${cid}`,
        "data-opens": String(span.opens ?? ""), "data-closes": String(span.closes ?? "") }),
      category.maxPerUser ? el("div", { class: "muted", "data-testid": `limit-${cid}`,
        text: `Max ${category.maxPerUser} per customer` }) : "",
      el("div", { class: "waitlist", "data-testid": `waitlist-${cid}` },
        el("button", { type: "button", class: "small", "data-testid": `waitlist-join-${cid}`,
          text: "Join waiting list", onclick: () => state.socket && state.socket.emit(
            "join-waitlist", { eventId: event.idEvent ?? event.id, categoryId: cid,
              quantity: Number(quantity.value) }) }),
        el("span", { "data-testid": `waitlist-position-${cid}` }),
        el("button", { type: "button", class: "small secondary",
          "data-testid": `waitlist-leave-${cid}`, text: "Leave",
          onclick: () => state.socket && state.socket.emit("leave-waitlist",
            { eventId: event.idEvent ?? event.id, categoryId: cid }) })));
  }

  function clockText(ms) {
    const seconds = Math.ceil(ms / 1000);
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function renderFairness() {
    const now = Date.now() + state.clockOffsetMs;
    for (const node of document.querySelectorAll(".sale-window")) {
      const cid = node.dataset.testid.slice("window-".length);
      const opens = Number(node.dataset.opens) || null;
      const closes = Number(node.dataset.closes) || null;
      let open = true;
      if (opens && now < opens) {
        open = false;
        node.textContent = `Sales open in ${clockText(opens - now)}`;
      } else if (closes && now >= closes) {
        open = false;
        node.textContent = "Sales closed";
      } else {
        node.textContent = closes ? `On sale · closes in ${clockText(closes - now)}` : "";
      }
      node.dataset.state = open ? "open" : "closed";
      const lock = document.querySelector(`[data-testid="lock-${cid}"]`);
      if (lock) lock.disabled = !open;
      const place = state.waiting.get(Number(cid));
      const soldOut = state.available.get(Number(cid)) === 0;
      const join = document.querySelector(`[data-testid="waitlist-join-${cid}"]`);
      const leave = document.querySelector(`[data-testid="waitlist-leave-${cid}"]`);
      const position = document.querySelector(`[data-testid="waitlist-position-${cid}"]`);
      if (join) join.hidden = !(open && soldOut && !place);
      if (leave) leave.hidden = !place;
      if (position) {
        position.textContent = place ? `#${place.position} of ${place.waiting} waiting` : "";
        position.dataset.position = place ? String(place.position) : "";
      }
    }
  }
  setInterval(renderFairness, 500);

  function offerToast(offer) {
    const expires = Date.parse(offer.expiresAt);
    const countdown = el("span", { class: "countdown", "data-testid": "offer-countdown",
      "data-expires-at": String(expires) });
    const node = el("div", { class: "toast toast-info", "data-testid": "toast", role: "alert",
      "data-source": "waitlist-offer" },
      el("span", { text: `Seats for you: ${offer.quantity} × `
        + `${categoryName(offer.eventId, offer.categoryId)} ` }),
      countdown,
      el("button", { type: "button", class: "small", "data-testid": "offer-buy", text: "Buy",
        onclick: (e) => { node.remove(); buy(state.locks.get(offer.lockId) || {
          lockId: offer.lockId, eventId: offer.eventId, categoryId: offer.categoryId,
          quantity: offer.quantity }, e.currentTarget); } }));
    $("toasts").append(node);
    const update = () => {
      const left = Math.max(0, expires - (Date.now() + state.clockOffsetMs));
      countdown.textContent = left > 0 ? `${clockText(left)} left` : "expired";
      if (left === 0) setTimeout(() => node.remove(), 3000);
      else setTimeout(update, 250);
    };
    update();
  }

  // -- locks -------------------------------------------------------------------------------

  function lockSeats(eventId, categoryId, quantity) {
    if (!state.socket || !state.socket.connected) return say("Not connected yet.");
    const admissionPass = state.passes.get(eventId);
    state.socket.emit("lock-tickets",
      admissionPass ? { eventId, categoryId, quantity, admissionPass }
        : { eventId, categoryId, quantity });
  }

  function rememberLock(lock, render = true) {
    state.locks.set(lock.lockId, {
      lockId: lock.lockId, eventId: lock.eventId, categoryId: lock.categoryId,
      quantity: lock.quantity, expiresAt: Date.parse(lock.expiresAt),
    });
    if (render) renderLocks();
  }

  function categoryName(eventId, categoryId) {
    const event = state.events.get(eventId);
    const category = event && (event.ticketCategories || []).find((c) => c.id === categoryId);
    return category ? `${event.eventName} · ${category.categoryName}` : `Category ${categoryId}`;
  }

  function renderLocks() {
    const list = $("locks-list");
    list.replaceChildren();
    for (const lock of state.locks.values()) {
      list.append(el("li", { "data-testid": "lock", "data-lock-id": lock.lockId },
        el("span", { text: `${lock.quantity} × ${categoryName(lock.eventId, lock.categoryId)}` }),
        el("span", { class: "countdown", "data-testid": "countdown",
          "data-expires-at": String(lock.expiresAt) }),
        el("button", { type: "button", "data-testid": "buy", text: "Buy",
          onclick: (e) => buy(lock, e.currentTarget) }),
        el("button", { type: "button", class: "secondary", "data-testid": "release",
          text: "Release",
          onclick: () => state.socket && state.socket.emit("unlock-tickets",
            { lockId: lock.lockId }) })));
    }
    $("no-locks").hidden = state.locks.size > 0;
    tick();
  }

  function tick() {
    const now = Date.now() + state.clockOffsetMs;
    for (const node of document.querySelectorAll("#locks-list .countdown")) {
      const left = Math.max(0, Number(node.dataset.expiresAt) - now);
      const seconds = Math.ceil(left / 1000);
      node.textContent = left > 0
        ? `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")} left`
        : "expired";
      node.classList.toggle("soon", left > 0 && left < 30000);
      node.classList.toggle("expired", left === 0);
      const buyButton = node.parentElement.querySelector('[data-testid="buy"]');
      if (buyButton && left === 0) buyButton.disabled = true;
    }
  }
  setInterval(tick, 250);

  async function buy(lock, button) {
    button.disabled = true;
    try {
      const admissionPass = state.passes.get(lock.eventId);
      const order = await api("/orders/with-lock", { method: "POST", body: {
        eventId: lock.eventId, categoryId: lock.categoryId, quantity: lock.quantity,
        lockId: lock.lockId,
      }, headers: admissionPass ? { "X-Admission-Pass": admissionPass } : {} });
      state.locks.delete(lock.lockId);
      renderLocks();
      say("");
      toast(`Order #${order.id} placed — waiting for confirmation`, "info", 3000);
      loadOrders();
    } catch (err) {
      say(`Could not buy: ${err.message}`);
      button.disabled = false;
      if (state.socket) state.socket.emit("get-my-locks");
    }
  }

  // -- orders ------------------------------------------------------------------------------

  // Loads can overlap (a purchase and its `order-completed` both ask): only the newest renders,
  // or a slow answer from before the completion would paint the order pending again.
  let ordersLoad = 0;
  async function loadOrders() {
    if (!state.token) return;
    const mine = ++ordersLoad;
    try {
      const orders = await api("/orders");
      if (mine !== ordersLoad) return;
      const list = $("orders-list");
      list.replaceChildren();
      for (const order of orders) {
        list.append(el("li", { "data-testid": `order-${order.id}`, "data-status": order.status },
          el("span", { text: `#${order.id} ${order.quantity} × ${order.eventName} · `
            + `${order.categoryName} — ${Number(order.totalPrice).toFixed(2)}` }),
          el("span", { class: `status status-${order.status}`, text: order.status })));
      }
      $("no-orders").hidden = orders.length > 0;
    } catch (err) {
      if (err.status === 401) return endSession("Your session has expired.");
      say(`Could not load orders: ${err.message}`);
    }
  }

  // -- wiring ------------------------------------------------------------------------------

  $("auth-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await logIn($("username").value.trim(), $("password").value);
    } catch (err) {
      say(`Login failed: ${err.message}`);
    }
  });
  $("register-btn").addEventListener("click", async () => {
    if (!$("auth-form").reportValidity()) return;
    try {
      await register($("username").value.trim(), $("password").value, $("role").value);
    } catch (err) {
      say(`Registration failed: ${err.message}`);
    }
  });
  $("logout-btn").addEventListener("click", () => endSession(""));
  $("refresh-events").addEventListener("click", loadEvents);
  $("refresh-orders").addEventListener("click", loadOrders);

  BoxofficeApi.session.resume(startSession);
})();
