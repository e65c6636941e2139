// HTTP calls of the client: POST /auth/register, POST /auth/login, GET /files/<id>,
// GET /web/config.json. Every failure becomes an ApiError with a readable message.

export class ApiError extends Error {
  constructor(message, { status = 0, code = "" } = {}) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function postJson(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError("Cannot reach the server. Check your connection and retry.");
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok) throw fromResponse(response, data);
  return data;
}

function fromResponse(response, data) {
  const code = typeof data.code === "string" ? data.code : "";
  let message = typeof data.error === "string" ? data.error : `Request failed (${response.status})`;
  if (response.status === 429) {
    const retry = Number(response.headers.get("Retry-After"));
    message = "Too many attempts. " + (retry > 0 ? `Try again in ${retry} s.` : "Try again later.");
  } else if (response.status === 503) {
    message = "The server is temporarily unavailable. Try again in a moment.";
  }
  return new ApiError(message, { status: response.status, code });
}

export function register(username, password) {
  return postJson("/auth/register", { username, password });
}

export function login(username, password) {
  return postJson("/auth/login", { username, password });
}

// Downloads need the bearer token, so they go through fetch and a blob URL.
export async function fetchFile(url, token) {
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  } catch {
    throw new ApiError("Cannot reach the server to download the file.");
  }
  if (!response.ok) {
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    throw fromResponse(response, data);
  }
  return response.blob();
}

export async function loadConfig() {
  const fallback = {
    fileMaxBytes: 5 * 1024 * 1024,
    fileAllowedTypes: ["*/*"],
    messageMaxChars: 5000,
    historyPageSize: 50,
  };
  try {
    const response = await fetch("/web/config.json", { cache: "no-store" });
    return response.ok ? { ...fallback, ...(await response.json()) } : fallback;
  } catch {
    return fallback;
  }
}
