// The chat's browser client. It speaks the chat.v1.json subprotocol, renders
// everything with textContent (never HTML), and reconnects with backoff,
// resuming from the last message ID it saw so nothing is shown twice.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const list = $("messages"), input = $("input"), statusEl = $("status");
  const usersEl = $("users"), roomsEl = $("rooms"), inputError = $("input-error");
  const nickInput = $("nick-input");

  const wsPort = document.querySelector('meta[name="chat-ws-port"]').content;
  // Sign-in: the site that issues tokens sends the person here with
  // #token=JWT; the token is kept for this tab only and taken out of the
  // address bar (a fragment is never sent to a server or logged).
  const authRequired = document.querySelector('meta[name="chat-auth"]').content === "required";
  const loginURL = document.querySelector('meta[name="chat-login"]').content;
  let token = sessionStorage.getItem("chat.token") || "";
  {
    const m = /^#token=([^&]+)/.exec(location.hash);
    if (m) {
      token = decodeURIComponent(m[1]);
      sessionStorage.setItem("chat.token", token);
      history.replaceState(null, "", location.pathname + location.search);
    }
  }
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const enc = new TextEncoder();

  let ws = null;
  let room = roomFromHash();
  // The tab's current name lives in sessionStorage (each tab is its own
  // user); a name the user chose lives in localStorage, for new tabs.
  let me = sessionStorage.getItem("chat.nick") || localStorage.getItem("chat.preferred-nick") || "";
  // A secret of this tab, sent on every connection: with it the tab takes
  // its nickname back when it reconnects to another node of a cluster
  // after its node died (the server keeps only a hash).
  let resumeToken = sessionStorage.getItem("chat.resume");
  if (!resumeToken) {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    resumeToken = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("chat.resume", resumeToken);
  }
  let renaming = false;
  let lastId = 0;          // newest message ID shown in this room
  let seen = new Set();    // message IDs shown in this room
  let users = [];
  let rooms = [];
  let limits = { max_message: 0 };
  let attempt = 0, retryTimer = null, countdown = null;
  let everOpened = false;
  let roomsTimer = null;

  function roomFromHash() {
    let r = "";
    try { r = decodeURIComponent(location.hash.slice(1)).toLowerCase(); } catch { /* malformed: default room */ }
    return /^[a-z0-9_-]{1,32}$/.test(r) ? r : "lobby";
  }

  function wsURL(resume) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // location.hostname keeps an IPv6 address's brackets, so it can take a port as is.
    const host = wsPort && wsPort !== "same-port" ? `${location.hostname}:${wsPort}` : location.host;
    const q = new URLSearchParams();
    if (token) q.set("token", token);
    else if (me) q.set("nick", me);
    q.set("resume", resumeToken);
    if (resume) q.set("since", String(lastId));
    return `${proto}//${host}/chat/${encodeURIComponent(room)}?${q}`;
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function append(li) {
    const stick = nearBottom();
    list.appendChild(li);
    // Keep the DOM bounded on long-lived tabs.
    while (list.children.length > 1000) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function timeEl(ts) {
    const t = document.createElement("time");
    const d = ts ? new Date(ts) : new Date();
    t.dateTime = d.toISOString();
    t.textContent = timeFmt.format(d);
    t.title = fullFmt.format(d);
    return t;
  }

  function addMessage(m) {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    if (m.id > lastId) lastId = m.id;
    const li = document.createElement("li");
    li.className = "msg" + (m.nick === me ? " own" : "") + (m.action ? " action" : "");
    li.dataset.id = m.id;
    const meta = document.createElement("div");
    meta.className = "meta";
    const nick = document.createElement("span");
    nick.className = "nick";
    nick.textContent = m.nick === me ? `${m.nick} (you)` : m.nick;
    meta.append(nick, timeEl(m.ts));
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = m.action ? `* ${m.nick} ${m.text}` : m.text;
    li.append(meta, body);
    append(li);
  }

  function addNotice(text, kind) {
    const li = document.createElement("li");
    li.className = "notice" + (kind ? " " + kind : "");
    li.append(timeEl());
    li.append(document.createTextNode(text));
    append(li);
  }

  function renderUsers() {
    usersEl.replaceChildren(...users.map((u) => {
      const li = document.createElement("li");
      li.textContent = u === me ? `${u} (you)` : u;
      if (u === me) li.className = "me";
      return li;
    }));
    $("user-count").textContent = `(${users.length})`;
  }

  function renderRooms() {
    const names = new Map(rooms.map((r) => [r.name, r.users]));
    if (!names.has(room)) names.set(room, users.length);
    names.set(room, users.length);
    roomsEl.replaceChildren(...[...names.keys()].sort().map((name) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.room = name;
      if (name === room) b.setAttribute("aria-current", "true");
      const label = document.createElement("span");
      label.textContent = "# " + name;
      const n = document.createElement("span");
      n.className = "n";
      n.textContent = String(names.get(name));
      n.setAttribute("aria-label", `${names.get(name)} online`);
      b.append(label, n);
      b.addEventListener("click", () => switchRoom(name));
      li.append(b);
      return li;
    }));
  }

  function setMe(n) {
    me = n;
    sessionStorage.setItem("chat.nick", n);
    if (document.activeElement !== nickInput) nickInput.value = n;
    document.title = `#${room} — Chat`;
  }

  function handle(ev) {
    switch (ev.type) {
      case "welcome":
        setMe(ev.nick);
        attempt = 0;
        setStatus("open", "Connected");
        if (ev.limits) limits = ev.limits;
        if (ev.rooms) rooms = ev.rooms;
        $("room-name").textContent = ev.room;
        if (ev.room !== room) { // moved by /join
          room = ev.room;
          history.replaceState(null, "", "#" + room);
          clearRoom();
        }
        input.placeholder = `Message #${room}`;
        clearInterval(roomsTimer);
        // Room counts change while we sit here; refresh them now and then.
        roomsTimer = setInterval(() => {
          if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "rooms" }));
        }, 15000);
        renderRooms();
        break;
      case "message": addMessage(ev); break;
      case "presence": users = ev.users || []; renderUsers(); renderRooms(); break;
      case "join":
        if (!users.includes(ev.nick)) users.push(ev.nick);
        users.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
        renderUsers(); renderRooms();
        addNotice(`${ev.nick} has joined.`);
        break;
      case "leave":
        users = users.filter((u) => u !== ev.nick);
        renderUsers(); renderRooms();
        addNotice(`${ev.nick} has left.`);
        break;
      case "nick":
        users = users.map((u) => (u === ev.old ? ev.nick : u));
        if (ev.old === me) {
          setMe(ev.nick);
          if (renaming) localStorage.setItem("chat.preferred-nick", ev.nick);
          renaming = false;
        }
        renderUsers();
        addNotice(`${ev.old} is now known as ${ev.nick}.`);
        break;
      case "rooms": rooms = ev.rooms || []; renderRooms(); break;
      case "info": addNotice(ev.text); break;
      case "error":
        addNotice(ev.text, "error");
        if (ev.code === "nick_refused") { nickInput.value = me; renaming = false; }
        break;
    }
  }

  function clearRoom() {
    list.replaceChildren();
    seen = new Set();
    lastId = 0;
    users = [];
    renderUsers();
  }

  function connect() {
    clearTimeout(retryTimer); clearInterval(countdown);
    const resume = seen.size > 0;
    setStatus("connecting", everOpened ? "Reconnecting…" : "Connecting…");
    const sock = new WebSocket(wsURL(resume), "chat.v1.json");
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      everOpened = true;
      if (resume) {
        const d = document.createElement("li");
        d.className = "divider";
        const s = document.createElement("span");
        s.textContent = "reconnected";
        d.append(s);
        append(d);
      }
    };
    sock.onmessage = (e) => {
      if (ws !== sock) return;
      let ev;
      try { ev = JSON.parse(e.data); } catch { return; }
      handle(ev);
    };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      ws = null;
      users = []; renderUsers();
      if (authRequired && !opened) { checkSignIn(e); return; }
      scheduleReconnect(e);
    };
    let opened = false;
    sock.addEventListener("open", () => { opened = true; });
  }

  // A refused handshake shows the page nothing but a close: ask the server
  // why, and stop retrying if the token is the reason.
  async function checkSignIn(e) {
    let why = "";
    try {
      const r = await fetch("/auth/check?room=" + encodeURIComponent(room), { headers: token ? { Authorization: "Bearer " + token } : {} });
      if (!r.ok) why = (await r.json()).error || r.statusText;
    } catch { /* the server is away: retry as usual */ }
    if (!why) { scheduleReconnect(e); return; }
    if (/expired|refused|required/.test(why)) { sessionStorage.removeItem("chat.token"); token = ""; }
    signInNeeded(why);
  }

  function signInNeeded(why) {
    setStatus("closed", "Not signed in");
    const li = document.createElement("li");
    li.className = "notice error signin";
    li.append(timeEl(), document.createTextNode(why + " "));
    if (loginURL) {
      const a = document.createElement("a");
      a.href = loginURL;
      a.textContent = "Sign in";
      li.append(a);
    }
    append(li);
  }

  function scheduleReconnect(e) {
    // Exponential backoff with jitter, capped, so a restarting server is not
    // stampeded by every open tab at once.
    const delay = Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
    attempt++;
    let left = Math.ceil(delay / 1000);
    const why = e && e.reason ? ` (${e.reason})` : "";
    const show = () => setStatus("closed", `Disconnected${why}; retrying in ${left}s`);
    show();
    countdown = setInterval(() => { left = Math.max(0, left - 1); show(); }, 1000);
    retryTimer = setTimeout(connect, delay);
  }

  function switchRoom(name) {
    if (name === room && ws) return;
    room = name;
    history.pushState(null, "", "#" + room);
    $("room-name").textContent = room;
    document.title = `#${room} — Chat`;
    clearRoom();
    renderRooms();
    if (ws) { const old = ws; ws = null; old.close(1000, "switching room"); }
    attempt = 0;
    connect();
    input.focus();
  }

  function send(text) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      inputError.textContent = "Not connected; your message was not sent.";
      return false;
    }
    const n = enc.encode(text).length;
    if (limits.max_message > 0 && n > limits.max_message) {
      inputError.textContent = `Message too long: ${n} bytes, the limit is ${limits.max_message}.`;
      return false;
    }
    ws.send(JSON.stringify({ type: "message", text }));
    return true;
  }

  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    // Blank lines around a message carry nothing; drop them.
    const text = input.value.replace(/^(\s*\n)+/, "").trimEnd();
    if (text.trim() === "") return;
    if (send(text)) {
      input.value = "";
      inputError.textContent = "";
      autosize();
    }
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("send-form").requestSubmit();
    }
  });
  function autosize() {
    input.style.height = "";
    if (input.scrollHeight > input.clientHeight) input.style.height = Math.min(input.scrollHeight + 2, 160) + "px";
  }
  input.addEventListener("input", () => { inputError.textContent = ""; autosize(); });

  $("nick-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const n = nickInput.value.trim();
    if (n && n !== me && send("/nick " + n)) renaming = true;
  });
  $("room-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const r = $("room-input").value.trim().toLowerCase();
    if (!/^[a-z0-9_-]{1,32}$/.test(r)) return;
    $("room-input").value = "";
    switchRoom(r);
  });
  // Back online: no point waiting out the backoff.
  window.addEventListener("online", () => {
    if (!ws) { attempt = 0; connect(); }
  });
  window.addEventListener("hashchange", () => {
    const r = roomFromHash();
    if (r !== room) switchRoom(r);
  });

  $("room-name").textContent = room;
  nickInput.value = me;
  renderRooms();
  if (authRequired) {
    // The name comes from the sign-in.
    nickInput.readOnly = true;
    $("nick-form").querySelector("button").hidden = true;
  }
  if (authRequired && !token) signInNeeded("This chat needs you to sign in.");
  else connect();
  input.focus();
})();
