// Parley web client: log in, rooms and DMs, messages with ack status, typing, receipts,
// presence, files, notifications, and a reconnect that resyncs each room with `since`.
// Uses the official socket.io-client (served by the gateway from node_modules).

import { io } from "/web/vendor/socket.io.esm.min.js";
import * as api from "./api.js";
import {
  RoomState,
  compareIds,
  dmPeer,
  dmRoomId,
  errorText,
  formatSize,
  newClientMsgId,
  typeAllowed,
} from "./state.js";
import { $, el, fillMessage, messageNode, toast } from "./view.js";

const SESSION_KEY = "parley.session";
const ACK_TIMEOUT_MS = 15000;
const TYPING_SEND_EVERY_MS = 2000;
const TYPING_IDLE_MS = 3000;
const TYPING_SHOW_MS = 6000;

const app = {
  config: null,
  session: null, // {token, userId, username, expiresAt}
  chat: null,
  notif: null,
  rooms: new Map(), // roomId -> RoomState
  labels: new Map(), // roomId -> label shown in the list
  order: [], // room ids, in list order
  active: null,
  names: new Map(), // userId -> username
  online: new Map(), // userId -> username
  pending: new Map(), // clientMsgId -> {cmid, roomId, text, replyTo, status, error, attempt}
  sent: new Set(), // ids of own messages acked in this page (status "Sent")
  nodes: new Map(), // key (message id or cmid) -> {li, sig} of the active room
  typing: new Map(), // roomId -> Map(userId -> {name, timer})
  replyTo: null,
  everConnected: false,
  banners: [],
  expiryTimer: null,
  readTimer: null,
  typingState: { roomId: null, sentAt: 0, idle: null },
};
window.__parley = app; // for debugging in the console

// --- session ------------------------------------------------------------------------------

function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    return s && typeof s.token === "string" && typeof s.userId === "string" ? s : null;
  } catch {
    return null;
  }
}

function roomsKey() {
  return `parley.rooms.${app.session.userId}`;
}

function saveRooms() {
  const rooms = app.order.map((id) => ({ id, label: app.labels.get(id) || id }));
  sessionStorage.setItem(roomsKey(), JSON.stringify({ rooms, active: app.active }));
}

function loadRooms() {
  try {
    return JSON.parse(sessionStorage.getItem(roomsKey()) || "null") || { rooms: [], active: null };
  } catch {
    return { rooms: [], active: null };
  }
}

function showAuth(message = "") {
  $("chat").hidden = true;
  $("whoami").hidden = true;
  $("toggle-sidebar").hidden = true;
  $("auth").hidden = false;
  $("auth-error").textContent = message;
  $("login-username").focus();
}

function logout(message = "") {
  if (app.chat) app.chat.disconnect();
  if (app.notif) app.notif.disconnect();
  app.chat = app.notif = null;
  clearTimeout(app.expiryTimer);
  sessionStorage.removeItem(SESSION_KEY);
  app.session = null;
  app.rooms.clear();
  app.order = [];
  app.labels.clear();
  app.pending.clear();
  app.sent.clear();
  app.active = null;
  app.everConnected = false;
  setBanner(null);
  document.body.dataset.connection = "offline";
  showAuth(message);
}

async function onAuthSubmit(event, mode) {
  event.preventDefault();
  const form = event.currentTarget;
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  const button = form.querySelector("button[type=submit]");
  $("auth-error").textContent = "";
  if (!username || !password) {
    $("auth-error").textContent = "Enter a username and a password.";
    return;
  }
  button.disabled = true;
  try {
    if (mode === "register") await api.register(username, password);
    const session = await api.login(username, password);
    form.reset();
    saveSession(session);
    start(session);
  } catch (error) {
    $("auth-error").textContent = error.message;
    form.elements.password.focus();
  } finally {
    button.disabled = false;
  }
}

// --- connection ---------------------------------------------------------------------------

function setBanner(text, kind = "warn") {
  const banner = $("banner");
  clearTimeout(setBanner.timer);
  if (!text) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  app.banners.push(text); // what the banner said, in order (window.__parley.banners)
  banner.hidden = false;
  banner.className = `banner ${kind}`;
  banner.textContent = text;
  if (kind === "ok") setBanner.timer = setTimeout(() => setBanner(null), 4000);
}

function start(session) {
  app.session = session;
  app.names.set(session.userId, session.username);
  const expires = Date.parse(session.expiresAt);
  if (!Number.isNaN(expires) && expires <= Date.now()) {
    logout("Your session has expired. Please log in again.");
    return;
  }
  if (!Number.isNaN(expires)) {
    // setTimeout takes at most ~24.8 days; a token lives a day
    app.expiryTimer = setTimeout(
      () => logout("Your session has expired. Please log in again."),
      Math.min(expires - Date.now(), 2 ** 31 - 1),
    );
  }
  $("auth").hidden = true;
  $("chat").hidden = false;
  $("whoami").hidden = false;
  $("toggle-sidebar").hidden = false;
  $("whoami-name").textContent = `Signed in as ${session.username}`;
  const saved = loadRooms();
  for (const r of saved.rooms) addRoom(r.id, r.label);
  app.active = saved.active && app.rooms.has(saved.active) ? saved.active : app.order[0] || null;
  renderRooms();
  renderRoom();
  $(app.active ? "composer-text" : "join-room").focus();
  connect();
}

function connect() {
  const options = {
    auth: { token: app.session.token },
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
  };
  const chat = (app.chat = io("/chat", options));
  app.notif = io("/notifications", options);
  setBanner("Connecting…", "info");

  chat.on("connect", onConnect);
  chat.on("disconnect", (reason) => {
    document.body.dataset.connection = "offline";
    for (const room of app.rooms.values()) room.joined = false;
    for (const p of app.pending.values()) if (p.status === "sending") p.status = "pending";
    renderRoom();
    if (reason === "io client disconnect") return;
    setBanner("Connection lost. Reconnecting…");
    if (reason === "io server disconnect") setTimeout(() => chat.connect(), 1000); // drain, kick
  });
  chat.on("connect_error", (error) => onConnectError(chat, error));
  app.notif.on("connect_error", (error) => onConnectError(app.notif, error));
  app.notif.on("disconnect", (reason) => {
    if (reason === "io server disconnect") setTimeout(() => app.notif?.connect(), 1000);
  });
  chat.on("presence:list", onPresenceList);
  chat.on("presence:online", (u) => onPresence(u, true));
  chat.on("presence:offline", (u) => onPresence(u, false));
  chat.on("room:history", onHistory);
  chat.on("chat:message", onMessage);
  chat.on("chat:typing", onTyping);
  chat.on("chat:read", onRead);
  chat.on("room:user-joined", (e) => roomNotice(e, "joined"));
  chat.on("room:user-left", (e) => roomNotice(e, "left"));
  app.notif.on("notification", onNotification);
}

function onConnectError(socket, error) {
  const message = error?.message || "";
  if (message === "Invalid token" || message === "Authentication required") {
    const expired = error?.data?.code === "token_expired";
    logout(
      expired
        ? "Your session has expired. Please log in again."
        : "Your session is no longer valid. Please log in again.",
    );
    return;
  }
  setBanner("Cannot reach the chat server. Retrying…");
  if (!socket.active) setTimeout(() => socket.connect(), 2000); // refused by the server: retry
}

function onConnect() {
  const again = app.everConnected;
  app.everConnected = true;
  document.body.dataset.connection = "online";
  if (again) {
    document.body.dataset.reconnects = String(Number(document.body.dataset.reconnects) + 1);
    setBanner("Reconnected. Catching up…", "info");
  } else {
    setBanner(null);
  }
  const joins = app.order.map((roomId) => joinRoom(roomId, { resync: true }));
  Promise.all(joins).then(() => {
    if (again && app.chat?.connected) setBanner("Reconnected.", "ok");
  });
}

// Joins (or re-joins after a reconnect, asking only for what was missed). Resolves when acked.
function joinRoom(roomId, { resync = false } = {}) {
  const room = app.rooms.get(roomId);
  const payload = { roomId };
  if (resync && room?.lastId) payload.since = room.lastId;
  else payload.limit = app.config.historyPageSize;
  return new Promise((resolve) => {
    app.chat.timeout(ACK_TIMEOUT_MS).emit("room:join", payload, (err, ack) => {
      const retryLater = () => {
        setTimeout(() => {
          if (app.chat?.connected && app.rooms.has(roomId) && !app.rooms.get(roomId).joined) {
            joinRoom(roomId, { resync: true });
          }
        }, 3000);
      };
      if (err) {
        retryLater(); // no answer in time: ask again (a disconnect re-joins by itself)
        resolve(false);
        return;
      }
      if (ack?.status === "ok") {
        if (room) room.joined = true;
        flushPending(roomId); // what was written before the (re)join goes out now
        renderRoom();
        resolve(true);
        return;
      }
      toast(`Could not join ${labelOf(roomId)}: ${errorText(ack?.code, ack?.error)}`, "error");
      if (ack?.code === "unavailable" || ack?.code === "rate_limited") retryLater();
      else removeRoom(roomId); // forbidden, invalid name, too many rooms: it will not work
      resolve(false);
    });
  });
}

// --- presence and notifications -------------------------------------------------------------

function onPresenceList(list) {
  app.online.clear();
  for (const u of Array.isArray(list) ? list : []) {
    app.online.set(u.userId, u.username);
    app.names.set(u.userId, u.username);
  }
  renderOnline();
  renderRooms();
}

function onPresence(user, online) {
  if (!user?.userId) return;
  app.names.set(user.userId, user.username);
  const had = app.online.has(user.userId);
  if (online) app.online.set(user.userId, user.username);
  else app.online.delete(user.userId);
  renderOnline();
  if (user.userId !== app.session.userId && had !== online) {
    toast(online ? `${user.username} is online` : `${user.username} went offline`, "presence");
  }
}

function roomNotice(event, verb) {
  if (!event?.roomId || event.userId === app.session.userId) return;
  app.names.set(event.userId, event.username);
  if (event.roomId === app.active) toast(`${event.username} ${verb} ${labelOf(event.roomId)}`);
}

function onNotification(n) {
  if (!n || typeof n !== "object") return;
  const from = n.from?.username || "someone";
  if (n.type === "dm" && typeof n.roomId === "string") {
    if (n.from?.userId) app.names.set(n.from.userId, from);
    if (!app.rooms.has(n.roomId)) {
      addRoom(n.roomId, `@${from}`);
      saveRooms();
      renderRooms();
      if (app.chat?.connected) joinRoom(n.roomId);
    }
    toast(`New direct message from ${from}: ${n.text || ""}`, "notify");
  } else if (n.type === "mention") {
    toast(`${from} mentioned you in ${labelOf(n.roomId)}: ${n.text || ""}`, "notify");
  } else if (n.type === "system") {
    toast(`Announcement: ${n.text || ""}`, "notify");
  }
}

// --- rooms --------------------------------------------------------------------------------

function labelOf(roomId) {
  if (roomId?.startsWith("dm:")) {
    const peer = dmPeer(roomId, app.session.userId);
    const name = app.names.get(peer);
    return name ? `@${name}` : app.labels.get(roomId) || "Direct message";
  }
  return `#${roomId}`;
}

function addRoom(roomId, label) {
  if (!app.rooms.has(roomId)) {
    app.rooms.set(roomId, new RoomState(roomId));
    app.order.push(roomId);
  }
  app.labels.set(roomId, label || labelOf(roomId));
}

function removeRoom(roomId) {
  app.rooms.delete(roomId);
  app.labels.delete(roomId);
  app.order = app.order.filter((id) => id !== roomId);
  for (const [cmid, p] of app.pending) if (p.roomId === roomId) app.pending.delete(cmid);
  if (app.active === roomId) app.active = app.order[0] || null;
  saveRooms();
  renderRooms();
  renderRoom();
}

async function openRoom(roomId, label) {
  const isNew = !app.rooms.has(roomId);
  addRoom(roomId, label);
  selectRoom(roomId);
  if (isNew && app.chat?.connected) await joinRoom(roomId);
}

function selectRoom(roomId) {
  if (app.active !== roomId) {
    app.replyTo = null;
    renderReply();
  }
  app.active = roomId;
  saveRooms();
  renderRooms();
  renderRoom();
  closeSidebar();
  $("composer-text").focus();
}

function leaveActive() {
  const roomId = app.active;
  if (!roomId) return;
  if (app.chat?.connected) app.chat.emit("room:leave", roomId);
  removeRoom(roomId);
}

// --- messages -----------------------------------------------------------------------------

function onHistory(h) {
  const room = app.rooms.get(h?.roomId);
  if (!room || !Array.isArray(h.messages)) return;
  const resync = h.hasMore !== undefined;
  // own messages accepted while we were cut off: their pending entries are done
  if (resync) for (const m of h.messages) resolvePending(m, ["sending", "pending"]);
  room.add(h.messages);
  if (!resync && room.hasOlder === null) {
    room.hasOlder = h.messages.length >= app.config.historyPageSize;
  }
  if (h.hasMore && app.chat?.connected) {
    app.chat.emit("room:join", { roomId: room.roomId, since: room.lastId }); // more to catch up
  }
  afterMessages(room);
}

function onMessage(m) {
  const room = app.rooms.get(m?.roomId);
  if (!room) return;
  resolvePending(m, ["sending"]);
  room.add([m]);
  stopTyping(room.roomId, m.userId);
  afterMessages(room);
}

// A message of ours from the server (a broadcast or a resync) means it is durable: the
// oldest pending entry that went out with the same room, text and reply is that message.
function resolvePending(m, statuses) {
  if (m?.userId !== app.session.userId || app.sent.has(m.id)) return;
  for (const p of app.pending.values()) {
    if (p.roomId === m.roomId && p.attempt > 0 && statuses.includes(p.status) && p.text === m.text &&
        (p.replyTo || null) === (m.replyTo || null)) {
      app.pending.delete(p.cmid);
      app.sent.add(m.id);
      return;
    }
  }
}

function afterMessages(room) {
  if (room.roomId === app.active) {
    renderRoom();
    scheduleRead();
  }
  renderRooms();
}

function unreadCount(room) {
  const me = app.session.userId;
  const mine = room.newestReadBy().get(me) || "";
  let count = 0;
  for (let i = room.ids.length - 1; i >= 0; i--) {
    const m = room.byId.get(room.ids[i]);
    if (compareIds(m.id, mine) <= 0) break;
    if (m.userId !== me) count++;
  }
  return count;
}

// Read receipts: the newest message from someone else, once it is on screen.
function scheduleRead() {
  clearTimeout(app.readTimer);
  app.readTimer = setTimeout(sendRead, 250);
}

function sendRead() {
  const room = app.rooms.get(app.active);
  if (!room || !room.joined || !app.chat?.connected || document.visibilityState !== "visible") {
    return;
  }
  const me = app.session.userId;
  if (!unreadCount(room)) return;
  const newest = [...room.ids].reverse().map((id) => room.byId.get(id)).find((m) => m.userId !== me);
  if (!newest) return;
  room.markRead(me, newest.id);
  app.chat.timeout(ACK_TIMEOUT_MS).emit("chat:read", { roomId: room.roomId, messageId: newest.id }, () => {});
  renderRooms();
}

function onRead(r) {
  const room = app.rooms.get(r?.roomId);
  if (!room || !room.markRead(r.userId, r.messageId)) return;
  if (room.roomId === app.active) renderRoom();
}

function sendFromComposer(event) {
  event?.preventDefault();
  const box = $("composer-text");
  const text = box.value.trim();
  $("composer-error").textContent = "";
  if (!text || !app.active) return;
  if (text.length > app.config.messageMaxChars) {
    $("composer-error").textContent =
      `That message is too long (${text.length} characters; at most ${app.config.messageMaxChars}).`;
    return;
  }
  const p = {
    cmid: newClientMsgId(),
    roomId: app.active,
    text,
    replyTo: app.replyTo?.id || null,
    status: "pending",
    error: null,
    attempt: 0,
    createdAt: new Date().toISOString(),
  };
  app.pending.set(p.cmid, p);
  box.value = "";
  app.replyTo = null;
  renderReply();
  sendTyping(false);
  trySend(p);
}

function trySend(p) {
  const room = app.rooms.get(p.roomId);
  if (!app.chat?.connected || !room?.joined) {
    p.status = "pending"; // flushed after the next (re)join
    renderRoom();
    return;
  }
  const attempt = ++p.attempt;
  p.status = "sending";
  p.error = null;
  renderRoom();
  const payload = { roomId: p.roomId, text: p.text, clientMsgId: p.cmid };
  if (p.replyTo) payload.replyTo = p.replyTo;
  app.chat.timeout(ACK_TIMEOUT_MS).emit("chat:message", payload, (err, ack) => {
    if (attempt !== p.attempt) return; // a newer attempt owns the entry
    if (ack?.status === "ok") {
      confirmSent(p, ack.messageId);
    } else if (app.pending.has(p.cmid)) {
      if (err && !app.chat?.connected) {
        p.status = "pending"; // resent with the same clientMsgId after the reconnect
      } else {
        p.status = "error";
        p.code = err ? "timeout" : ack?.code;
        p.error = errorText(p.code, ack?.error);
      }
    }
    renderRoom();
  });
}

function confirmSent(p, messageId) {
  app.pending.delete(p.cmid);
  if (typeof messageId !== "string") return;
  app.sent.add(messageId);
  const room = app.rooms.get(p.roomId);
  if (room && !room.byId.has(messageId)) {
    // acked but its broadcast was missed (e.g. a retry of an accepted message): show it now
    const me = app.session;
    room.add([{
      id: messageId, roomId: p.roomId, userId: me.userId, username: me.username, text: p.text,
      replyTo: p.replyTo || undefined, timestamp: p.createdAt, readBy: [me.userId],
    }]);
  }
}

function flushPending(roomId) {
  for (const p of app.pending.values()) {
    if (p.roomId === roomId && p.status === "pending") trySend(p);
  }
}

function retry(cmid) {
  const p = app.pending.get(cmid);
  if (p) trySend(p);
}

// --- typing -------------------------------------------------------------------------------

function sendTyping(isTyping) {
  const state = app.typingState;
  clearTimeout(state.idle);
  if (!app.chat?.connected) return;
  const roomId = isTyping ? app.active : state.roomId;
  if (!roomId || !app.rooms.get(roomId)?.joined) return;
  const now = Date.now();
  if (isTyping) {
    if (state.roomId !== roomId || now - state.sentAt > TYPING_SEND_EVERY_MS) {
      app.chat.emit("chat:typing", { roomId, isTyping: true });
      state.roomId = roomId;
      state.sentAt = now;
    }
    state.idle = setTimeout(() => sendTyping(false), TYPING_IDLE_MS);
  } else if (state.roomId) {
    app.chat.emit("chat:typing", { roomId: state.roomId, isTyping: false });
    state.roomId = null;
    state.sentAt = 0;
  }
}

function onTyping(t) {
  if (!t?.roomId || t.userId === app.session.userId) return;
  if (!app.typing.has(t.roomId)) app.typing.set(t.roomId, new Map());
  const users = app.typing.get(t.roomId);
  clearTimeout(users.get(t.userId)?.timer);
  if (t.isTyping) {
    const timer = setTimeout(() => stopTyping(t.roomId, t.userId), TYPING_SHOW_MS);
    users.set(t.userId, { name: t.username, timer });
  } else {
    users.delete(t.userId);
  }
  renderTyping();
}

function stopTyping(roomId, userId) {
  const users = app.typing.get(roomId);
  if (!users?.has(userId)) return;
  clearTimeout(users.get(userId).timer);
  users.delete(userId);
  renderTyping();
}

// --- files --------------------------------------------------------------------------------

async function onFileChosen(event) {
  const input = event.currentTarget;
  const file = input.files?.[0];
  input.value = "";
  const status = $("composer-error");
  status.textContent = "";
  if (!file || !app.active) return;
  const { fileMaxBytes, fileAllowedTypes } = app.config;
  const mimeType = file.type || "application/octet-stream";
  if (file.size > fileMaxBytes) {
    status.textContent = `File too large: ${file.name} is ${formatSize(file.size)}; the limit is ${formatSize(fileMaxBytes)}.`;
    return;
  }
  if (file.size === 0) {
    status.textContent = `${file.name} is empty.`;
    return;
  }
  if (!typeAllowed(mimeType, fileAllowedTypes)) {
    status.textContent = `Files of type ${mimeType} are not allowed.`;
    return;
  }
  if (!app.chat?.connected) {
    status.textContent = "Not connected. Try again when the connection is back.";
    return;
  }
  const roomId = app.active;
  const data = await file.arrayBuffer();
  toast(`Uploading ${file.name}…`);
  app.chat
    .timeout(60000)
    .emit("chat:file", { roomId, file: data, fileName: file.name, mimeType }, (err, ack) => {
      if (ack?.status === "ok") {
        if (typeof ack.messageId === "string") app.sent.add(ack.messageId);
        return;
      }
      const code = err ? "timeout" : ack?.code;
      const text = code === "too_large"
        ? `File too large: the limit is ${formatSize(fileMaxBytes)}.`
        : errorText(code, ack?.error);
      $("composer-error").textContent = `Upload of ${file.name} failed. ${text}`;
    });
}

async function download(att, box) {
  box.querySelector(".msg-error")?.remove();
  try {
    const blob = await api.fetchFile(att.url, app.session.token);
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: att.fileName, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
  } catch (error) {
    box.append(el("p", { class: "error msg-error", role: "alert" }, error.message));
  }
}

// --- rendering ----------------------------------------------------------------------------

function renderRooms() {
  const list = $("room-list");
  const rows = app.order.map((roomId) => {
    const unread = roomId === app.active ? 0 : unreadCount(app.rooms.get(roomId));
    return [roomId, labelOf(roomId), unread];
  });
  const totalUnread = rows.reduce((sum, row) => sum + row[2], 0);
  document.title = totalUnread ? `(${totalUnread}) Parley` : "Parley";
  const sig = JSON.stringify([rows, app.active]);
  if (list.dataset.sig === sig) return; // unchanged: keep the nodes (and the focus)
  list.dataset.sig = sig;
  list.replaceChildren();
  for (const [roomId, label, unread] of rows) {
    app.labels.set(roomId, label);
    const button = el(
      "button",
      {
        type: "button",
        class: "room-button",
        "aria-current": roomId === app.active ? "true" : null,
        onclick: () => selectRoom(roomId),
        dataset: { room: roomId },
      },
      label,
      unread ? el("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null,
    );
    list.append(el("li", {}, button));
  }
}

function renderOnline() {
  const list = $("online-list");
  list.replaceChildren();
  const users = [...app.online].sort((a, b) => a[1].localeCompare(b[1]));
  $("online-count").textContent = `(${users.length})`;
  for (const [userId, username] of users) {
    if (userId === app.session.userId) {
      list.append(el("li", { dataset: { user: username } }, `${username} (you)`));
      continue;
    }
    const dm = () => openRoom(dmRoomId(app.session.userId, userId), `@${username}`);
    list.append(
      el(
        "li",
        { dataset: { user: username } },
        el("button", { type: "button", onclick: dm, title: `Direct message to ${username}` }, username),
      ),
    );
  }
}

function renderTyping() {
  const users = [...(app.typing.get(app.active)?.values() || [])].map((u) => u.name);
  $("typing").textContent =
    users.length === 0 ? "" : users.length === 1 ? `${users[0]} is typing…` : `${users.join(", ")} are typing…`;
}

function renderReply() {
  const preview = $("reply-preview");
  if (!app.replyTo) {
    preview.hidden = true;
    $("reply-text").textContent = "";
    return;
  }
  preview.hidden = false;
  const text = app.replyTo.text || app.replyTo.attachment?.fileName || "";
  $("reply-text").textContent = `Replying to ${app.replyTo.username}: ${text.slice(0, 80)}`;
}

const handlers = {
  onReply: (m) => {
    app.replyTo = m;
    renderReply();
    $("composer-text").focus();
  },
  onRetry: retry,
  onDownload: download,
};

function renderRoom() {
  const roomId = app.active;
  const room = app.rooms.get(roomId);
  const list = $("messages");
  if (list.dataset.room !== (roomId || "")) {
    list.replaceChildren();
    app.nodes.clear();
    list.dataset.room = roomId || "";
  }
  $("room-title").textContent = room ? labelOf(roomId) : "No room yet";
  $("room-empty").hidden = Boolean(room);
  $("composer").hidden = !room;
  $("leave-room").hidden = !room;
  $("history-controls").hidden = !room || room.ids.length === 0;
  renderTyping();
  if (!room) return;
  $("load-older").hidden = room.hasOlder === false;
  $("history-start").hidden = room.hasOlder !== false;

  const me = app.session.userId;
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const wanted = [];
  const ownIds = room.ids.filter((id) => room.byId.get(id).userId === me);
  const lastOwn = ownIds[ownIds.length - 1];
  for (const id of room.ids) {
    const m = room.byId.get(id);
    const own = m.userId === me;
    const seen = own && id === lastOwn ? room.seenBy(id, me).map(nameOf) : [];
    const quoted = m.replyTo ? room.byId.get(m.replyTo) || null : null;
    wanted.push({ key: id, m, view: { own, status: own ? "sent" : "received", seenBy: seen, quoted } });
  }
  for (const p of app.pending.values()) {
    if (p.roomId !== roomId) continue;
    const m = { roomId, text: p.text, replyTo: p.replyTo, username: app.session.username, timestamp: p.createdAt };
    const quoted = p.replyTo ? room.byId.get(p.replyTo) || null : null;
    wanted.push({
      key: p.cmid, m,
      view: { own: true, status: p.status, error: p.error, cmid: p.cmid, canRetry: p.status === "error", quoted },
    });
  }
  const keep = new Set(wanted.map((w) => w.key));
  for (const [key, node] of app.nodes) {
    if (!keep.has(key)) {
      node.li.remove();
      app.nodes.delete(key);
    }
  }
  let cursor = list.firstChild;
  for (const w of wanted) {
    const sig = JSON.stringify([w.m.text, w.view.status, w.view.error, w.view.seenBy, w.view.quoted?.id, w.m.attachment?.id]);
    let node = app.nodes.get(w.key);
    if (!node) {
      node = { li: messageNode(w.m, w.view, handlers), sig };
      app.nodes.set(w.key, node);
    } else if (node.sig !== sig) {
      fillMessage(node.li, w.m, w.view, handlers);
      node.sig = sig;
    }
    if (node.li === cursor) cursor = cursor.nextSibling;
    else list.insertBefore(node.li, cursor);
  }
  if (nearBottom) list.scrollTop = list.scrollHeight;
}

function nameOf(userId) {
  return app.names.get(userId) || "someone";
}

function loadOlder() {
  const room = app.rooms.get(app.active);
  if (!room || !app.chat?.connected) return;
  const button = $("load-older");
  button.disabled = true;
  const payload = { roomId: room.roomId, limit: app.config.historyPageSize };
  if (room.oldestId) payload.before = room.oldestId;
  app.chat.timeout(ACK_TIMEOUT_MS).emit("chat:history", payload, (err, ack) => {
    button.disabled = false;
    if (err || ack?.status !== "ok") {
      toast(`Could not load older messages: ${errorText(err ? "timeout" : ack?.code, ack?.error)}`, "error");
      return;
    }
    const list = $("messages");
    const fromBottom = list.scrollHeight - list.scrollTop;
    room.add(ack.messages || []);
    room.hasOlder = Boolean(ack.hasMore);
    renderRoom();
    list.scrollTop = list.scrollHeight - fromBottom;
  });
}

// --- sidebar on narrow screens ------------------------------------------------------------

function closeSidebar() {
  $("sidebar").classList.remove("open");
  $("toggle-sidebar").setAttribute("aria-expanded", "false");
}

function toggleSidebar() {
  const open = $("sidebar").classList.toggle("open");
  $("toggle-sidebar").setAttribute("aria-expanded", String(open));
}

// --- wiring -------------------------------------------------------------------------------

async function main() {
  app.config = await api.loadConfig();
  $("login-form").addEventListener("submit", (e) => onAuthSubmit(e, "login"));
  $("register-form").addEventListener("submit", (e) => onAuthSubmit(e, "register"));
  $("logout").addEventListener("click", () => logout());
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("join-room");
    const name = input.value.trim();
    if (!name) return;
    if (name.startsWith("user:") || name.startsWith("dm:") || name.includes("#")) {
      toast("Room names may not start with user: or dm:, nor contain #.", "error");
      return;
    }
    input.value = "";
    openRoom(name);
  });
  $("leave-room").addEventListener("click", leaveActive);
  $("composer").addEventListener("submit", sendFromComposer);
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) sendFromComposer(event);
    if (event.key === "Escape" && app.replyTo) {
      app.replyTo = null;
      renderReply();
    }
  });
  $("composer-text").addEventListener("input", (event) => {
    sendTyping(event.currentTarget.value.trim().length > 0);
  });
  $("reply-cancel").addEventListener("click", () => {
    app.replyTo = null;
    renderReply();
    $("composer-text").focus();
  });
  $("file-input").addEventListener("change", onFileChosen);
  $("load-older").addEventListener("click", loadOlder);
  $("toggle-sidebar").addEventListener("click", toggleSidebar);
  document.addEventListener("visibilitychange", scheduleRead);

  const session = loadSession();
  if (session) start(session);
  else showAuth();
}

main();
