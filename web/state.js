// Pure client state: rooms and their messages, ordered and de-duplicated by message id,
// plus small helpers (DM room names, error texts, file checks). No DOM, no sockets.

// Message ids are strings that sort in time order within a room (PROTOCOL.md); compare them
// as strings, never as numbers.
export function compareIds(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class RoomState {
  constructor(roomId) {
    this.roomId = roomId;
    this.byId = new Map(); // id -> message
    this.ids = []; // sorted ascending
    this.hasOlder = null; // null: unknown, true/false once chat:history or history told us
    this.unread = 0;
    this.joined = false;
  }

  get lastId() {
    return this.ids.length ? this.ids[this.ids.length - 1] : null;
  }

  get oldestId() {
    return this.ids.length ? this.ids[0] : null;
  }

  // Adds or replaces messages; returns the ids that were new (not seen before).
  add(messages) {
    const added = [];
    for (const m of messages) {
      if (!m || typeof m.id !== "string") continue;
      if (!this.byId.has(m.id)) {
        added.push(m.id);
        this.insertId(m.id);
      } else {
        // keep the union of readers we already knew (a resync may carry an older readBy)
        const known = this.byId.get(m.id).readBy || [];
        m.readBy = Array.from(new Set([...(m.readBy || []), ...known]));
      }
      this.byId.set(m.id, m);
    }
    return added;
  }

  insertId(id) {
    const ids = this.ids;
    if (!ids.length || compareIds(ids[ids.length - 1], id) < 0) {
      ids.push(id);
      return;
    }
    let lo = 0;
    let hi = ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareIds(ids[mid], id) < 0) lo = mid + 1;
      else hi = mid;
    }
    ids.splice(lo, 0, id);
  }

  // The id that follows `id` in order (for inserting a DOM node before it), or null.
  nextId(id) {
    const i = this.ids.indexOf(id);
    return i >= 0 && i + 1 < this.ids.length ? this.ids[i + 1] : null;
  }

  markRead(userId, messageId) {
    const m = this.byId.get(messageId);
    if (!m) return false;
    m.readBy = m.readBy || [];
    if (m.readBy.includes(userId)) return false;
    m.readBy.push(userId);
    return true;
  }

  // For each reader, the newest message they read: having read it, they saw everything before.
  newestReadBy() {
    const newest = new Map();
    for (const id of this.ids) {
      for (const user of this.byId.get(id).readBy || []) newest.set(user, id);
    }
    return newest;
  }

  // Users other than the author who have seen `messageId`.
  seenBy(messageId, authorId) {
    const out = [];
    for (const [user, id] of this.newestReadBy()) {
      if (user !== authorId && compareIds(id, messageId) >= 0) out.push(user);
    }
    return out;
  }
}

export function dmRoomId(a, b) {
  return a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

export function dmPeer(roomId, me) {
  const parts = roomId.split(":");
  if (parts.length !== 3 || parts[0] !== "dm") return null;
  return parts[1] === me ? parts[2] : parts[1];
}

// Readable texts for the error codes of the wire contract.
const ERROR_TEXTS = {
  invalid_message: "The server refused this message as invalid.",
  rate_limited: "Rate limit exceeded: you are sending too fast. Wait a moment, then retry.",
  forbidden: "You are not allowed to do that here.",
  not_found: "Not found.",
  too_large: "File too large.",
  too_many_rooms: "You are in too many rooms. Leave one, then try again.",
  unavailable: "The server is temporarily unavailable. Retry in a moment.",
  timeout: "No answer from the server yet.",
};

export function errorText(code, fallback) {
  return ERROR_TEXTS[code] || fallback || "Something went wrong.";
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// `image/*`-style patterns, as the server's PARLEY_FILE_ALLOWED_TYPES.
export function typeAllowed(mime, patterns) {
  const type = (mime || "").toLowerCase();
  return patterns.some((p) => {
    const pattern = p.toLowerCase();
    if (pattern.endsWith("/*")) return type.startsWith(pattern.slice(0, -1));
    return pattern === "*" || pattern === "*/*" || pattern === type;
  });
}

// crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
export function newClientMsgId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `c-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// `@name` mentions in a text (the server notifies the named users).
export function mentions(text, username) {
  const re = /(^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{3,32})/g;
  const me = username.toLowerCase();
  for (const match of text.matchAll(re)) {
    if (match[2].toLowerCase() === me) return true;
  }
  return false;
}
