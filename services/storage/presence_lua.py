"""The presence Lua: one script per transition, and the announcement envelope they publish.

Every key a script touches starts with its first argument ``p`` (``ARGV[1]``, also passed as
``KEYS[1]`` so a Redis Cluster routes the call): the user's shard on a cluster, the one
``{presence}`` tag on a single Redis — the key layout and how each transition stays in one slot
are described in ``presence_redis.py``. ``__SCOPE__`` (``all`` / ``rooms``) and
``__CLUSTER__`` (``1`` on a Redis Cluster) are filled in when the adapter registers them.
"""

from __future__ import annotations

from typing import Any

HOST_ID = "parley-presence"  # the pub/sub sender id: no gateway skips it as its own
ANNOUNCE_NAMESPACE = "/chat"  # presence:online / presence:offline go to /chat sockets


def announcement(
    event: str, user_id: str, username: str, room: str | None = None, skip_sid: str | None = None
) -> dict[str, Any]:
    """The pub/sub envelope of one announcement: python-socketio's ``AsyncPubSubManager``
    ``emit`` message (method ``emit``, the arguments as a list in ``data``), which every
    gateway's fan-out listener delivers. The Lua ``announce`` below builds exactly this (the
    keys and constants come from here); ``tests/integration/test_presence_envelope.py``
    checks both against the installed python-socketio."""
    msg: dict[str, Any] = {
        "method": "emit",
        "event": event,
        "namespace": ANNOUNCE_NAMESPACE,
        "host_id": HOST_ID,
        "data": [{"userId": user_id, "username": username}],
    }
    if skip_sid:
        msg["skip_sid"] = skip_sid
    if room:
        msg["room"] = room
    return msg


# Shared Lua helpers. p = key prefix ("...{presence}:"), ch = the Socket.IO channel.
# __SCOPE__ is "all" (announce to every client) or "rooms" (announce to the rooms a user shares).
LIB = """
local SCOPE = '__SCOPE__'
local CLUSTER = '__CLUSTER__' == '1'  -- pods / epoch live in another slot (see the module doc)
local function announce(ch, event, user, name, skip, room)
  local msg = {method='emit', event=event, namespace='__NAMESPACE__', host_id='__HOST_ID__',
               data={{userId=user, username=name}}}
  if skip and skip ~= '' then msg['skip_sid'] = skip end
  local target = ch
  if room then
    msg['room'] = room
    if not CLUSTER then
      target = ch .. '#__NAMESPACE__#' .. room  -- fanout_wire.room_channel: room members only
    end  -- else (Redis Cluster) the pod-wide channel: every pod, delivered to room members
  end
  redis.call('PUBLISH', target, cjson.encode(msg))
end
-- Leaves one room with one session; returns 1 when the user has no session left in it.
local function leave(p, user, sid, room)
  redis.call('SREM', p .. 'rm:' .. user .. ':' .. room, sid)
  redis.call('SREM', p .. 'sr:' .. sid, room)
  if redis.call('SCARD', p .. 'rm:' .. user .. ':' .. room) == 0 then
    redis.call('SREM', p .. 'members:' .. room, user)
    return 1
  end
  return 0
end
-- A session ends: its rooms are left; rooms the user is now absent from are remembered
-- (lastrooms) so a scoped offline announcement reaches them.
local function drop_rooms(p, user, sid)
  for _, room in ipairs(redis.call('SMEMBERS', p .. 'sr:' .. sid)) do
    if leave(p, user, sid, room) == 1 and SCOPE == 'rooms' then
      redis.call('SADD', p .. 'lastrooms:' .. user, room)
    end
  end
  redis.call('DEL', p .. 'sr:' .. sid)
end
local function offline(p, ch, user, now)
  local name = redis.call('HGET', p .. 'online', user) or user
  redis.call('HDEL', p .. 'online', user)
  redis.call('ZREM', p .. 'pending', user)
  redis.call('HSET', p .. 'seen', user, now)
  if SCOPE == 'rooms' then
    for _, room in ipairs(redis.call('SMEMBERS', p .. 'lastrooms:' .. user)) do
      announce(ch, 'presence:offline', user, name, nil, room)
    end
  else
    announce(ch, 'presence:offline', user, name, nil, nil)
  end
  redis.call('DEL', p .. 'lastrooms:' .. user)
  return name
end
-- Removes one session; returns 1 offline now, 2 in grace, 0 other sessions remain.
local function drop_session(p, ch, user, sid, now, grace)
  drop_rooms(p, user, sid)
  local skey = p .. 's:' .. user
  if redis.call('HDEL', skey, sid) == 0 then return 0 end
  redis.call('DECR', p .. 'sessions')
  if redis.call('HLEN', skey) > 0 then return 0 end
  if grace > 0 then
    redis.call('ZADD', p .. 'pending', now + grace, user)
    return 2
  end
  offline(p, ch, user, now)
  return 1
end
""".replace("__HOST_ID__", HOST_ID).replace("__NAMESPACE__", ANNOUNCE_NAMESPACE)

# ARGV: p, ch, user, sid, room, username, quiet. In rooms scope, the user's first session in
# the room announces them online to it.
JOIN_ROOM = (
    LIB
    + """
local p, ch, user, sid, room = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('SADD', p .. 'rm:' .. user .. ':' .. room, sid)
redis.call('SADD', p .. 'sr:' .. sid, room)
local returning = redis.call('SREM', p .. 'lastrooms:' .. user, room) == 1  -- within grace
if redis.call('SADD', p .. 'members:' .. room, user) == 1 and SCOPE == 'rooms'
   and not returning and ARGV[7] ~= '1' then
  announce(ch, 'presence:online', user, ARGV[6], sid, room)
end
return 1
"""
)

# ARGV: p, ch, user, sid, room
LEAVE_ROOM = (
    LIB
    + """
return leave(ARGV[1], ARGV[3], ARGV[4], ARGV[5])
"""
)

# Online users sharing a room with any session of the user (rooms scope). ARGV: p, ch, user
SCOPED_ONLINE = (
    LIB
    + """
local p, user = ARGV[1], ARGV[3]
local seen, out = {}, {}
for _, sid in ipairs(redis.call('HKEYS', p .. 's:' .. user)) do
  for _, room in ipairs(redis.call('SMEMBERS', p .. 'sr:' .. sid)) do
    for _, other in ipairs(redis.call('SMEMBERS', p .. 'members:' .. room)) do
      if not seen[other] then
        seen[other] = true
        local name = redis.call('HGET', p .. 'online', other)
        if name then table.insert(out, other); table.insert(out, name) end
      end
    end
  end
end
if not seen[user] then
  local name = redis.call('HGET', p .. 'online', user)
  if name then table.insert(out, user); table.insert(out, name) end
end
return out
"""
)

# ARGV: p, ch, user, sid, username, info, pod, now, quiet ("1": no announcement)
CONNECT = (
    LIB
    + """
local p, ch, user, sid, name, pod = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7]
local skey = p .. 's:' .. user
local before = redis.call('HLEN', skey)
if redis.call('HSET', skey, sid, ARGV[6]) == 1 then redis.call('INCR', p .. 'sessions') end
redis.call('HSET', p .. 'online', user, name)
redis.call('SADD', p .. 'pod:' .. pod, user .. '\\t' .. sid)
if not CLUSTER and redis.call('ZSCORE', p .. 'pods', pod) == false then
  redis.call('ZADD', p .. 'pods', ARGV[8], pod)
end
if before > 0 then return 0 end
if redis.call('ZREM', p .. 'pending', user) == 1 then return 0 end  -- back within grace
if ARGV[9] ~= '1' and SCOPE == 'all' then
  announce(ch, 'presence:online', user, name, sid, nil)
end
return 1
"""
)

# ARGV: p, ch, user, sid, pod, now, grace_ms
DISCONNECT = (
    LIB
    + """
local p, ch, user, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('SREM', p .. 'pod:' .. ARGV[5], user .. '\\t' .. sid)
return drop_session(p, ch, user, sid, tonumber(ARGV[6]), tonumber(ARGV[7]))
"""
)

# A crashed pod: its users with no other session go offline at once (the TTL was the wait).
# ARGV: p, ch, pod, now. Returns user, username pairs.
REAP_POD = (
    LIB
    + """
local p, ch, pod, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local gone = {}
for _, member in ipairs(redis.call('SMEMBERS', p .. 'pod:' .. pod)) do
  local tab = string.find(member, '\\t', 1, true)
  local user, sid = string.sub(member, 1, tab - 1), string.sub(member, tab + 1)
  local name = redis.call('HGET', p .. 'online', user) or user
  if drop_session(p, ch, user, sid, now, 0) == 1 then
    table.insert(gone, user)
    table.insert(gone, name)
  end
end
redis.call('DEL', p .. 'pod:' .. pod)
if not CLUSTER then redis.call('ZREM', p .. 'pods', pod) end
return gone
"""
)

# Users whose grace ran out with no session back go offline. ARGV: p, ch, now.
SWEEP_PENDING = (
    LIB
    + """
local p, ch, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local gone = {}
for _, user in ipairs(redis.call('ZRANGEBYSCORE', p .. 'pending', '-inf', now)) do
  redis.call('ZREM', p .. 'pending', user)
  if redis.call('HLEN', p .. 's:' .. user) == 0 then
    table.insert(gone, user)
    table.insert(gone, offline(p, ch, user, now))
  end
end
return gone
"""
)

# ARGV: p, pod, now, fresh epoch (used only when none exists).
# Returns {epoch, 1 if the pod was registered before this beat else 0}.
# Redis Cluster only. The rooms of every session of the user (their shard). ARGV: p, ch, user
USER_ROOMS = """
local p, user = ARGV[1], ARGV[3]
local seen, out = {}, {}
for _, sid in ipairs(redis.call('HKEYS', p .. 's:' .. user)) do
  for _, room in ipairs(redis.call('SMEMBERS', p .. 'sr:' .. sid)) do
    if not seen[room] then seen[room] = true; table.insert(out, room) end
  end
end
return out
"""

# Redis Cluster only. The online users of one shard in any of the rooms (ARGV[3..]), as
# user, username pairs. ARGV: p, ch, room...
SHARD_ONLINE_IN = """
local p = ARGV[1]
local seen, out = {}, {}
for i = 3, #ARGV do
  for _, other in ipairs(redis.call('SMEMBERS', p .. 'members:' .. ARGV[i])) do
    if not seen[other] then
      seen[other] = true
      local name = redis.call('HGET', p .. 'online', other)
      if name then table.insert(out, other); table.insert(out, name) end
    end
  end
end
return out
"""

# Redis Cluster only: after its shards were reaped, the pod leaves the registry unless it
# showed a sign of life meanwhile (a heartbeat or a connect moved its score).
# ARGV: pods key, pod, the score read before the reap.
FORGET_POD = """
local score = redis.call('ZSCORE', ARGV[1], ARGV[2])
if score and tonumber(score) == tonumber(ARGV[3]) then
  redis.call('ZREM', ARGV[1], ARGV[2])
  return 1
end
return 0
"""

HEARTBEAT = """
local known = redis.call('ZSCORE', ARGV[1] .. 'pods', ARGV[2]) and 1 or 0
redis.call('ZADD', ARGV[1] .. 'pods', ARGV[3], ARGV[2])
redis.call('SET', ARGV[1] .. 'epoch', ARGV[4], 'NX')
return {redis.call('GET', ARGV[1] .. 'epoch'), known}
"""
