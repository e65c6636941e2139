// Fixed offered load (open loop): R receivers join one room, S senders emit "chat:message"
// with an ack on a fixed schedule, RATE messages/s in total (round-robin over the senders),
// for SECONDS, whether or not earlier sends were acked. Then it waits GRACE seconds for late
// acks and deliveries and prints one JSON line:
//   offered/sent/acked/error/missing acks, ack latency (emit -> ack) p50/p99/max,
//   send -> delivery latency p50/p99/max, deliveries expected (acked x R) and received,
//   and how late the scheduler emitted (p99/max), since a late generator hides server latency.
// Latencies use performance.now() in this one process (senders and receivers share a clock).
// URLS may be comma-separated: clients are spread over the servers round-robin.
// Usage: node fixed_rate.js URLS NAMESPACE TOKEN RECEIVERS SENDERS RATE SECONDS [GRACE]
// socket.io-client resolves from NODE_PATH (the benchmark passes the kit's node_modules).
"use strict";
const { io } = require("socket.io-client");
const { performance } = require("perf_hooks");

const [urlArg, ns, token, rStr, sStr, rateStr, secStr, graceStr] = process.argv.slice(2);
const R = +rStr, S = +sStr, RATE = +rateStr, SECONDS = +secStr, GRACE = +(graceStr || 3);
if (!(R > 0 && S > 0 && RATE > 0 && SECONDS > 0)) {
  console.error("usage: node fixed_rate.js URLS NAMESPACE TOKEN RECEIVERS SENDERS RATE SECONDS [GRACE]");
  process.exit(2);
}
const urls = urlArg.split(",");
const room = "fixed-" + Date.now() + "-" + process.pid;
let nth = 0;

function connect() {
  const s = io(urls[nth++ % urls.length] + ns, {
    transports: ["websocket"], auth: { token }, reconnection: false, forceNew: true,
  });
  return new Promise((res, rej) => { s.on("connect", () => res(s)); s.on("connect_error", rej); });
}

async function connectMany(n) {
  const out = [];
  for (let i = 0; i < n; i += 50) {
    const wave = [];
    for (let j = i; j < Math.min(n, i + 50); j++) wave.push(connect());
    out.push(...(await Promise.all(wave)));
  }
  return out;
}

function pct(sorted, q) {
  if (!sorted.length) return null;
  return +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(2);
}

function summary(values) {
  const s = Float64Array.from(values).sort();
  return { n: s.length, p50: pct(s, 0.5), p99: pct(s, 0.99), max: s.length ? +s[s.length - 1].toFixed(2) : null };
}

(async () => {
  const receivers = await connectMany(R);
  const senders = await connectMany(S);
  const deliveryMs = [];
  let deliveries = 0, foreign = 0, disconnects = 0;
  for (const s of receivers) {
    s.on("chat:message", (m) => {
      const text = (m && m.text) || "";
      const at = text.indexOf(":");
      const marker = at > 0 ? text.slice(at + 1) : "";
      if (marker !== room) { foreign++; return; }
      deliveries++;
      deliveryMs.push(performance.now() - +text.slice(0, at));
    });
  }
  // Joins are not acked by every server: wait until the room:user-joined announcements
  // (both servers send them) have been quiet for 500 ms, so the measured load does not
  // queue behind a join storm the server is still working through (at least 1 s, at most 30).
  let lastJoinSeen = performance.now();
  for (const s of receivers.concat(senders)) {
    s.on("disconnect", () => { disconnects++; });
    s.on("room:user-joined", () => { lastJoinSeen = performance.now(); });
    s.emit("room:join", room);
  }
  const joinsFrom = performance.now();
  while (performance.now() - joinsFrom < 30000 &&
         (performance.now() - joinsFrom < 1000 || performance.now() - lastJoinSeen < 500)) {
    await new Promise((r) => setTimeout(r, 50));
  }

  const ackMs = [], lateMs = [];
  let sent = 0, acked = 0, errors = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await new Promise((done) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(Math.floor((RATE * (Math.min(now, end) - t0)) / 1000), Math.floor(RATE * SECONDS));
      while (sent < due) {
        const scheduled = t0 + (sent * 1000) / RATE;
        const sock = senders[sent % S];
        sent++;
        const at = performance.now();
        lateMs.push(at - scheduled);
        sock.emit("chat:message", { roomId: room, text: at.toFixed(3) + ":" + room }, (r) => {
          ackMs.push(performance.now() - at);
          if (r && r.status === "ok") acked++; else errors++;
        });
      }
      if (now >= end) { clearInterval(timer); done(); }
    };
    const timer = setInterval(tick, 1);
  });
  const elapsed = (performance.now() - t0) / 1000;
  // Grace: until every ack and delivery is in, or GRACE seconds.
  const graceEnd = performance.now() + GRACE * 1000;
  while (performance.now() < graceEnd && (acked + errors < sent || deliveries < acked * R)) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const out = {
    receivers: R, senders: S, offered_per_s: RATE, seconds: +elapsed.toFixed(2),
    sent, sent_per_s: +(sent / elapsed).toFixed(1), acked, errors, missing_acks: sent - acked - errors,
    ack: summary(ackMs), delivery: summary(deliveryMs),
    deliveries, deliveries_expected: acked * R, foreign_messages: foreign, disconnects,
    schedule_late: summary(lateMs),
  };
  for (const s of receivers.concat(senders)) s.close();
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.error("ERR", e && e.message); process.exit(1); });
