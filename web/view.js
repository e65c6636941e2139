// DOM building. All user-provided text goes through text nodes (textContent); nothing here
// ever parses a string as HTML.

import { formatSize } from "./state.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function clockTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function excerpt(text, limit = 80) {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

// One message (confirmed or pending) as an <li>. `view` carries what the message needs:
// {own, status, error, seenBy: [names], quoted: {username, text} | null, canRetry}
// and the handlers {onReply, onRetry, onDownload}.
export function messageNode(m, view, handlers) {
  const li = el("li", {
    class: `msg${view.own ? " own" : ""} ${view.status}`,
    dataset: { status: view.status },
  });
  if (m.id) li.dataset.id = m.id;
  if (view.cmid) li.dataset.cmid = view.cmid;
  fillMessage(li, m, view, handlers);
  return li;
}

export function fillMessage(li, m, view, handlers) {
  li.replaceChildren();
  li.className = `msg${view.own ? " own" : ""} ${view.status}`;
  li.dataset.status = view.status;
  const meta = el(
    "div",
    { class: "meta" },
    el("span", { class: "author" }, m.username || "?"),
    " ",
    m.timestamp ? el("time", { datetime: m.timestamp }, clockTime(m.timestamp)) : null,
  );
  li.append(meta);
  if (m.replyTo) {
    const quoted = view.quoted;
    li.append(
      el(
        "blockquote",
        { class: "quote" },
        quoted ? `${quoted.username}: ${excerpt(quoted.text || "(file)")}` : "Reply to an earlier message",
      ),
    );
  }
  if (m.text) li.append(el("p", { class: "text" }, m.text));
  if (m.attachment) li.append(attachmentNode(m.attachment, handlers));
  const foot = el("div", { class: "foot" });
  if (view.own) foot.append(el("span", { class: "status" }, statusLabel(view.status)));
  if (view.seenBy && view.seenBy.length) {
    foot.append(el("span", { class: "seen" }, `Seen by ${view.seenBy.join(", ")}`));
  }
  if (m.id) {
    foot.append(
      el("button", { type: "button", class: "reply", onclick: () => handlers.onReply(m) }, "Reply"),
    );
  }
  if (view.canRetry) {
    foot.append(
      el("button", { type: "button", class: "retry", onclick: () => handlers.onRetry(view.cmid) }, "Retry"),
    );
  }
  li.append(foot);
  if (view.error) li.append(el("p", { class: "error msg-error", role: "alert" }, view.error));
}

function statusLabel(status) {
  return (
    {
      pending: "Waiting for connection…",
      sending: "Sending…",
      sent: "Sent",
      error: "Not sent",
    }[status] || ""
  );
}

function attachmentNode(att, handlers) {
  const box = el("div", { class: "attachment" });
  const label = `${att.fileName} (${formatSize(Number(att.size) || 0)})`;
  box.append(
    el(
      "button",
      { type: "button", class: "download", onclick: () => handlers.onDownload(att, box) },
      `Download ${label}`,
    ),
  );
  return box;
}

export function toast(text, kind = "info") {
  const node = el("div", { class: `toast ${kind}` }, text);
  $("toasts").append(node);
  setTimeout(() => node.remove(), 8000);
}
