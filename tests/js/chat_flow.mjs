// Compatibility check: the official JavaScript `socket.io-client` (v4) against a running Parley,
// through the whole classic chat flow of PROTOCOL.md with two users.
//
//   node tests/js/chat_flow.mjs <baseUrl> <tokenA> <tokenB> <polling|websocket|upgrade>
//        [--url-b <baseUrl for user B>] [--room <roomId>] [--resync-seconds <n>]
//
// Modes: `polling` = transports ["polling"] only, `websocket` = ["websocket"] only, `upgrade` =
// the client default (long-polling first, then upgrade; the upgrade must actually happen).
// User ids and usernames are read from the tokens' claims (`sub` or `userId`, `username`).
// Prints one JSON summary on stdout (the last line). Exit code 0 when every step passed,
// 1 when a step failed, 2 on bad usage. A failed step that later steps depend on stops the
// run; the others are recorded and the run goes on, so one report shows every failure.

import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { io } from "socket.io-client";

const USAGE =
  "usage: node tests/js/chat_flow.mjs <baseUrl> <tokenA> <tokenB> <polling|websocket|upgrade> " +
  "[--url-b <baseUrl>] [--room <roomId>] [--resync-seconds <n>]";
const TRANSPORTS = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  upgrade: {}, // the client default: ["polling", "websocket"] with upgrade
};
const WAIT_MS = 10_000; // any single expected event or ack
const QUIET_MS = 700; // how long "nothing arrives" is watched for
const WATCHDOG_MS = 150_000;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// --- small helpers ---------------------------------------------------------------------------

class CheckFailed extends Error {}

function check(condition, message, detail) {
  if (!condition) {
    const extra = detail === undefined ? "" : `: ${show(detail)}`;
    throw new CheckFailed(message + extra);
  }
}

function show(value, max = 600) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length > max ? `${text.slice(0, max)}...(${text.length} chars)` : text;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function claimsOf(token) {
  try {
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
    const userId = claims.sub ?? claims.userId;
    check(typeof userId === "string" && userId, "token has no sub/userId claim");
    return { userId, username: typeof claims.username === "string" && claims.username ? claims.username : userId };
  } catch (err) {
    throw new CheckFailed(`cannot read the token's claims (${err.message})`);
  }
}

/** A socket on `/chat` that records every event it receives, in order. */
class Peer {
  constructor(name, baseUrl, token, mode) {
    this.name = name;
    this.events = []; // {event, data}
    this.waiters = new Set();
    this.initialTransport = null;
    this.upgradedTo = null;
    const opts = { forceNew: true, reconnection: false, autoConnect: false, timeout: WAIT_MS, ...TRANSPORTS[mode] };
    if (token !== undefined) opts.auth = { token };
    this.socket = io(`${baseUrl.replace(/\/+$/, "")}/chat`, opts);
    this.socket.io.on("open", () => {
      const engine = this.socket.io.engine;
      this.initialTransport = engine.transport.name;
      engine.on("upgrade", (transport) => {
        this.upgradedTo = transport.name;
      });
    });
    this.socket.onAny((event, ...args) => {
      this.events.push({ event, data: args[0] });
      for (const waiter of [...this.waiters]) waiter();
    });
  }

  get transport() {
    return this.socket.io.engine?.transport?.name ?? null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new CheckFailed(`${this.name}: not connected within ${WAIT_MS} ms`)), WAIT_MS);
      this.socket.once("connect", () => {
        clearTimeout(timer);
        resolve(this);
      });
      this.socket.once("connect_error", (err) => {
        clearTimeout(timer);
        reject(new CheckFailed(`${this.name}: connect_error ${show({ message: err.message, data: err.data })}`));
      });
      this.socket.connect();
    });
  }

  /** Connects expecting a refusal; resolves with the connect_error. */
  refusal() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new CheckFailed(`${this.name}: no connect_error within ${WAIT_MS} ms`)), WAIT_MS);
      this.socket.once("connect", () => {
        clearTimeout(timer);
        reject(new CheckFailed(`${this.name}: the connection was accepted`));
      });
      this.socket.once("connect_error", (err) => {
        clearTimeout(timer);
        resolve(err);
      });
      this.socket.connect();
    });
  }

  mark() {
    return this.events.length;
  }

  received(event, where = () => true, from = 0) {
    return this.events.slice(from).filter((e) => e.event === event && where(e.data)).map((e) => e.data);
  }

  /** The first `event` (at or after index `from`) whose data satisfies `where`, waiting for it. */
  waitFor(event, where = () => true, { what = "", from = 0, ms = WAIT_MS } = {}) {
    const found = () => this.received(event, where, from)[0];
    const now = found();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const hit = found();
        if (hit !== undefined) {
          this.waiters.delete(waiter);
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const seen = this.received(event, () => true, from);
        reject(new CheckFailed(`${this.name}: no ${event}${what ? ` ${what}` : ""} within ${ms} ms; ${event} received: ${show(seen)}`));
      }, ms);
      this.waiters.add(waiter);
    });
  }

  /** Fails if a matching `event` arrives (or already arrived after `from`) within `ms`. */
  async never(event, where, { what = "", from = 0, ms = QUIET_MS } = {}) {
    await sleep(ms);
    const got = this.received(event, where, from);
    check(got.length === 0, `${this.name}: unexpected ${event}${what ? ` ${what}` : ""}`, got);
  }

  async call(event, data, ms = WAIT_MS) {
    try {
      return await this.socket.timeout(ms).emitWithAck(event, data);
    } catch (err) {
      throw new CheckFailed(`${this.name}: no ack for ${event} within ${ms} ms (${err.message})`);
    }
  }

  emit(event, data) {
    this.socket.emit(event, data);
  }

  close() {
    this.socket.disconnect();
  }
}

// --- wire contract checks --------------------------------------------------------------------

function checkOk(ack, event) {
  check(ack && typeof ack === "object" && ack.status === "ok", `${event} ack is not {status:"ok"}`, ack);
  return ack;
}

function checkUserEntry(entry, where) {
  check(
    entry && typeof entry.userId === "string" && typeof entry.username === "string",
    `${where}: entry is not {userId, username} strings`,
    entry,
  );
}

function checkMessage(m, expected, where) {
  check(m && typeof m === "object" && !Array.isArray(m), `${where}: message is not an object`, m);
  check(typeof m.id === "string" && m.id.length > 0, `${where}: id is not a non-empty string (typeof ${typeof m.id})`, m);
  for (const key of ["roomId", "userId", "username", "text", "timestamp"]) {
    check(typeof m[key] === "string", `${where}: ${key} is not a string`, m);
  }
  check(ISO_MS.test(m.timestamp), `${where}: timestamp is not ISO 8601 UTC with ms and Z`, m.timestamp);
  check(!Number.isNaN(Date.parse(m.timestamp)), `${where}: timestamp does not parse`, m.timestamp);
  check(Array.isArray(m.readBy) && m.readBy.every((u) => typeof u === "string"), `${where}: readBy is not an array of user ids`, m);
  check(m.readBy.includes(m.userId), `${where}: readBy does not contain the sender`, m);
  for (const [key, value] of Object.entries(expected)) {
    check(m[key] === value, `${where}: ${key} is ${show(m[key])}, expected ${show(value)}`, m);
  }
}

// --- the flow --------------------------------------------------------------------------------

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        "url-b": { type: "string" },
        room: { type: "string" },
        "resync-seconds": { type: "string", default: "20" },
      },
    });
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    return 2;
  }
  const [urlA, tokenA, tokenB, mode] = parsed.positionals;
  if (parsed.positionals.length !== 4 || !(mode in TRANSPORTS) || !/^https?:\/\//.test(urlA)) {
    console.error(USAGE);
    return 2;
  }
  const urlB = parsed.values["url-b"] ?? urlA;
  const room = parsed.values.room ?? `js-${randomBytes(4).toString("hex")}`;
  const resyncMs = Number(parsed.values["resync-seconds"]) * 1000;

  const summary = { ok: false, mode, urlA, urlB, room, users: {}, transports: {}, steps: [] };
  const peers = [];
  const peer = (name, url, token) => {
    const p = new Peer(name, url, token, mode);
    peers.push(p);
    return p;
  };
  let stopped = null;

  // critical: later steps depend on it (a failure stops the flow); independent: runs even
  // after such a failure (it needs nothing from the flow).
  async function step(name, fn, { critical = true, independent = false } = {}) {
    const record = { name, ok: false, ms: 0 };
    summary.steps.push(record);
    if (stopped && !independent) {
      record.skipped = `after failed step "${stopped}"`;
      return;
    }
    const started = Date.now();
    try {
      const detail = await fn();
      record.ok = true;
      if (detail !== undefined) record.detail = detail;
    } catch (err) {
      record.error = err instanceof CheckFailed ? err.message : `${err.name}: ${err.message}`;
      if (!(err instanceof CheckFailed)) record.stack = String(err.stack).split("\n").slice(0, 4).join(" | ");
      if (critical) stopped = name;
    }
    record.ms = Date.now() - started;
  }

  const watchdog = setTimeout(() => {
    summary.error = `watchdog: the run took longer than ${WATCHDOG_MS} ms`;
    void finish(1);
  }, WATCHDOG_MS);

  async function finish(code) {
    clearTimeout(watchdog);
    for (const p of peers) {
      try {
        p.close();
      } catch {
        /* closing is best effort */
      }
    }
    await sleep(300); // let the disconnect packets go out (polling sends them asynchronously)
    summary.failed = summary.steps.filter((s) => !s.ok && !s.skipped).map((s) => s.name);
    summary.skipped = summary.steps.filter((s) => s.skipped).map((s) => s.name);
    summary.ok = code === 0 && summary.steps.every((s) => s.ok);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (!summary.ok) {
      for (const s of summary.steps.filter((x) => x.error)) console.error(`FAILED ${s.name}: ${s.error}`);
      if (summary.error) console.error(summary.error);
    }
    process.exit(summary.ok ? 0 : 1);
  }

  let alice, bob, bob2, bob3;
  let userA, userB, first;
  const missed = [];

  await step("claims", async () => {
    userA = claimsOf(tokenA);
    userB = claimsOf(tokenB);
    check(userA.userId !== userB.userId, "the two tokens are for the same user");
    summary.users = { A: userA.userId, B: userB.userId };
  });

  await step("connect A; presence:list contains self", async () => {
    alice = await peer("A", urlA, tokenA).connect();
    const list = await alice.waitFor("presence:list", () => true);
    check(Array.isArray(list), "presence:list is not an array", list);
    list.forEach((u) => checkUserEntry(u, "presence:list"));
    check(list.some((u) => u.userId === userA.userId && u.username === userA.username), "presence:list lacks self", list);
    const ids = list.map((u) => u.userId);
    check(new Set(ids).size === ids.length, "presence:list names a user twice", list);
  });

  await step("connect B; A sees presence:online of B; B's list has both", async () => {
    bob = await peer("B", urlB, tokenB).connect();
    const list = await bob.waitFor("presence:list", () => true);
    check(Array.isArray(list), "presence:list is not an array", list);
    const ids = list.map((u) => u.userId);
    check(ids.includes(userB.userId) && ids.includes(userA.userId), "B's presence:list lacks B or A", list);
    check(new Set(ids).size === ids.length, "presence:list names a user twice", list);
    const online = await alice.waitFor("presence:online", (u) => u?.userId === userB.userId, { what: "for B" });
    check(online.username === userB.username, "presence:online username", online);
    await bob.never("presence:online", (u) => u?.userId === userB.userId, { what: "about itself", ms: 0 });
  });

  await step(`transport (${mode})`, async () => {
    const expectInitial = mode === "websocket" ? "websocket" : "polling";
    for (const p of [alice, bob]) {
      check(p.initialTransport === expectInitial, `${p.name}: opened on ${p.initialTransport}, expected ${expectInitial}`);
      if (mode === "upgrade") {
        const deadline = Date.now() + WAIT_MS;
        while (p.transport !== "websocket" && Date.now() < deadline) await sleep(50);
        check(p.transport === "websocket" && p.upgradedTo === "websocket", `${p.name}: no upgrade to websocket within ${WAIT_MS} ms (transport ${p.transport})`);
      }
    }
    for (const p of [alice, bob]) {
      summary.transports[p.name] = { initial: p.initialTransport, current: p.transport, upgradedTo: p.upgradedTo };
    }
  });

  await step("A room:join (string) -> ack + room:history", async () => {
    const ack = checkOk(await alice.call("room:join", room), "room:join");
    check(ack.roomId === room, "room:join ack roomId", ack);
    const history = await alice.waitFor("room:history", (h) => h?.roomId === room, { what: `for ${room}` });
    check(Array.isArray(history.messages) && history.messages.length === 0, "a new room's history is not []", history);
  });

  await step("B room:join (string) -> ack + history; A sees room:user-joined", async () => {
    const ack = checkOk(await bob.call("room:join", room), "room:join");
    check(ack.roomId === room, "room:join ack roomId", ack);
    const history = await bob.waitFor("room:history", (h) => h?.roomId === room, { what: `for ${room}` });
    check(Array.isArray(history.messages), "room:history messages is not an array", history);
    const joined = await alice.waitFor("room:user-joined", (j) => j?.userId === userB.userId, { what: "for B" });
    check(joined.roomId === room && joined.username === userB.username, "room:user-joined fields", joined);
  });

  await step("chat:message -> ack {ok, messageId: string}; both receive it", async () => {
    const ack = checkOk(await alice.call("chat:message", { roomId: room, text: "  hello from socket.io-client ✓  " }), "chat:message");
    check(typeof ack.messageId === "string" && ack.messageId.length > 0, `messageId is not a string (typeof ${typeof ack.messageId})`, ack);
    first = ack.messageId;
    const expected = { id: first, roomId: room, userId: userA.userId, username: userA.username, text: "hello from socket.io-client ✓" };
    for (const p of [alice, bob]) {
      const m = await p.waitFor("chat:message", (x) => x?.id === first, { what: `with id ${first}` });
      checkMessage(m, expected, `${p.name}'s chat:message`);
      check(m.readBy.length === 1, `${p.name}: readBy does not start as [senderId]`, m.readBy);
      const age = Math.abs(Date.now() - Date.parse(m.timestamp));
      check(age < 60_000, `${p.name}: timestamp is ${age} ms away from now`, m.timestamp);
    }
    return { messageId: first };
  });

  await step("chat:typing relayed to the other, never echoed", async () => {
    const fromA = alice.mark();
    const fromB = bob.mark();
    bob.emit("chat:typing", { roomId: room, isTyping: true });
    const typing = await alice.waitFor("chat:typing", (t) => t?.userId === userB.userId, { what: "from B", from: fromA });
    check(typing.roomId === room && typing.username === userB.username && typing.isTyping === true, "chat:typing fields", typing);
    await bob.never("chat:typing", () => true, { what: "(echo to the sender)", from: fromB });
  }, { critical: false });

  await step("chat:read {roomId, messageId} -> the other gets chat:read {userId, messageId, roomId}", async () => {
    const fromA = alice.mark();
    const fromB = bob.mark();
    const [ack, relay] = await Promise.allSettled([
      bob.call("chat:read", { roomId: room, messageId: first }),
      alice.waitFor("chat:read", (r) => r?.messageId === first, { what: `for ${first}`, from: fromA }),
    ]);
    const problems = [];
    if (ack.status === "rejected") problems.push(ack.reason.message);
    else if (ack.value?.status !== "ok") problems.push(`chat:read ack is not ok: ${show(ack.value)}`);
    if (relay.status === "rejected") problems.push(relay.reason.message);
    else if (relay.value.userId !== userB.userId || relay.value.roomId !== room) problems.push(`chat:read relay fields: ${show(relay.value)}`);
    check(problems.length === 0, problems.join("; "));
    await bob.never("chat:read", () => true, { what: "(echo to the reader)", from: fromB });
  }, { critical: false });

  await step("readBy persisted: a later room:history shows B in readBy", async () => {
    // Read-your-writes is promised; the retry only tolerates asynchronous storage.
    const deadline = Date.now() + resyncMs;
    let m;
    for (;;) {
      const from = bob.mark();
      checkOk(await bob.call("room:join", room), "room:join");
      const history = await bob.waitFor("room:history", (h) => h?.roomId === room, { what: `for ${room}`, from });
      m = (history.messages ?? []).find((x) => x?.id === first);
      if ((m && m.readBy?.includes(userB.userId)) || Date.now() > deadline) break;
      await sleep(500);
    }
    check(m, `message ${first} missing from room:history`);
    check(m.readBy.includes(userB.userId) && m.readBy.includes(userA.userId), "readBy after chat:read", m.readBy);
  }, { critical: false });

  await step("second device of B: no second presence:online", async () => {
    const from = alice.mark();
    bob2 = await peer("B2", urlA, tokenB).connect();
    const list = await bob2.waitFor("presence:list", () => true);
    check(Array.isArray(list) && list.filter((u) => u.userId === userB.userId).length === 1, "B2's presence:list must name B once", list);
    await alice.never("presence:online", (u) => u?.userId === userB.userId, { what: "for B's second device", from });
  }, { critical: false });

  await step("presence:offline only when B's last socket leaves", async () => {
    const from = alice.mark();
    const lastSeen = bob.received("chat:message").at(-1)?.id;
    check(lastSeen === first, "B's last seen message", lastSeen);
    bob.close();
    if (bob2) {
      await alice.never("presence:offline", (u) => u?.userId === userB.userId, { what: "while B2 is still connected", from });
      bob2.close();
    }
    const off = await alice.waitFor("presence:offline", (u) => u?.userId === userB.userId, { what: "for B", from });
    check(off.username === userB.username, "presence:offline username", off);
  }, { critical: false });

  await step("A sends while B is away", async () => {
    bob.close();
    bob2?.close();
    for (let i = 1; i <= 3; i++) {
      const ack = checkOk(await alice.call("chat:message", { roomId: room, text: `missed ${i}` }), "chat:message");
      check(typeof ack.messageId === "string", "messageId is not a string", ack);
      missed.push(ack.messageId);
    }
    const ordered = [first, ...missed];
    check(ordered.every((id, i) => i === 0 || ordered[i - 1] < id), "message ids do not increase within the room", ordered);
    return { missed };
  });

  await step("resync: B reconnects, room:join {roomId, since} -> exactly the missed, oldest-first", async () => {
    bob3 = await peer("B3", urlB, tokenB).connect();
    // Storage is asynchronous in cluster mode (Kafka -> worker -> Cassandra): retry for a while.
    const deadline = Date.now() + resyncMs;
    let history;
    let attempts = 0;
    for (;;) {
      attempts += 1;
      const from = bob3.mark();
      const ack = checkOk(await bob3.call("room:join", { roomId: room, since: first }), "room:join {since}");
      check(ack.roomId === room, "room:join ack roomId", ack);
      history = await bob3.waitFor("room:history", (h) => h?.roomId === room, { what: `for ${room}`, from });
      check(Array.isArray(history.messages), "room:history messages is not an array", history);
      if (history.messages.length >= missed.length || Date.now() > deadline) break;
      await sleep(500);
    }
    const got = history.messages.map((m) => m?.id);
    check(show(got) === show(missed), `resync returned ${show(got)}, expected exactly ${show(missed)} (after ${attempts} attempts)`);
    history.messages.forEach((m, i) =>
      checkMessage(m, { id: missed[i], roomId: room, userId: userA.userId, username: userA.username, text: `missed ${i + 1}` }, `resync[${i}]`),
    );
    check(!history.hasMore, "hasMore is set for a short resync", history.hasMore);
    return { attempts };
  });

  await step("the resynced socket gets live messages again", async () => {
    const ack = checkOk(await alice.call("chat:message", { roomId: room, text: "welcome back" }), "chat:message");
    const m = await bob3.waitFor("chat:message", (x) => x?.id === ack.messageId, { what: "after resync" });
    checkMessage(m, { roomId: room, text: "welcome back" }, "B3's chat:message");
    for (const p of [alice, bob]) {
      const dupes = p.received("chat:message", (x) => x?.id === first).length;
      check(dupes === 1, `${p.name} received message ${first} ${dupes} times`);
    }
  }, { critical: false });

  await step("error acks: forbidden (room not joined), invalid_message (blank text)", async () => {
    const ack = await alice.call("chat:message", { roomId: `${room}-not-joined`, text: "x" });
    check(ack?.status === "error" && ack.code === "forbidden" && ack.error === "Forbidden", "expected the forbidden error ack", ack);
    const bad = await alice.call("chat:message", { roomId: room, text: "   " });
    check(
      bad?.status === "error" && bad.code === "invalid_message" && bad.error === "Invalid message",
      "expected the invalid_message error ack for blank text",
      bad,
    );
  }, { critical: false });

  await step("refused without a token: connect_error 'Authentication required'", async () => {
    const err = await peer("no-token", urlA, undefined).refusal();
    check(err.message === "Authentication required", "connect_error message", err.message);
  }, { critical: false, independent: true });

  await step("refused with a bad token: connect_error 'Invalid token'", async () => {
    for (const [name, token] of [
      ["garbage", "not-a-jwt"],
      ["forged", `${tokenA.split(".").slice(0, 2).join(".")}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`],
    ]) {
      const err = await peer(`bad-token-${name}`, urlA, token).refusal();
      check(err.message === "Invalid token", `${name} token: connect_error message`, err.message);
    }
  }, { critical: false, independent: true });

  await finish(0);
}

main().then(
  (code) => {
    if (code !== undefined) process.exit(code);
  },
  (err) => {
    console.error(`chat_flow.mjs crashed: ${err.stack}`);
    process.exit(1);
  },
);
