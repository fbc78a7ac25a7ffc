/* SPDX-License-Identifier: MIT */
/*
 * scripts.c - the Lua scripts that change a queue's state in Redis, each
 * one atomic step: submit, fetch, reclaim, heartbeat, finish, promote,
 * cancel. The key layout and the fields are described in
 * man/man7/libasyncq-redis.7; every script takes the same first six
 * arguments (key prefix, group, consumer, dead-letter length, deliveries
 * allowed, largest payload) so that one prelude serves them all.
 *
 * Time is always the server's (TIME), never a client's or a worker's: a
 * job's due time, deadline and back-off are decided inside the script that
 * sets them, so workers with skewed clocks agree.
 */
#include "redis.h"

/* Shared by every script: arguments, the clock, and the three ways a job
 * leaves the queue (resolved, dead-lettered, acknowledged). */
static const char prelude[] =
	"local P, G, C = ARGV[1], ARGV[2], ARGV[3]\n"
	"local DEADMAX, MAXDELIV, MAXPAY = ARGV[4], tonumber(ARGV[5]),"
	" tonumber(ARGV[6])\n"
	"local function now_ms()\n"
	"  local t = redis.call('TIME')\n"
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"end\n"
	/* The clock read once per script call, and only if needed. */
	"local clock\n"
	"local function now_once()\n"
	"  if not clock then clock = now_ms() end\n"
	"  return clock\n"
	"end\n"
	/* NONE: an empty table never written to; SK: the ready streams. */
	"local NONE, SK = {}, {[0] = P .. 's0', P .. 's1', P .. 's2'}\n"
	/* Tell every submitter the outcome, keep it if asked, forget the
	 * job. With a batch accumulator (FINISH), the replies to one stream
	 * become one entry and the deletes one DEL, sent at its end; and a
	 * job that is gone is left alone (false). known: {rt, ttl, nil,
	 * true} when the caller knows them and that the job lives with no
	 * waiters. */
	"local function resolve(id, st, code, val, msg, acc, known)\n"
	"  local jk, wk = P .. 'j:' .. id, nil\n"
	"  local h = known or redis.call('HMGET', jk, 'rt', 'ttl', 'w', 'pr')\n"
	"  local to = NONE\n"
	"  if acc and not h[4] then return false end\n"
	"  if h[1] and h[1] ~= '' then to = {{h[1], id}} end\n"
	/* A waiter is "<reply stream>|<the id it knows the job by>"; w says
	 * there are some (and only then is there a set to delete). */
	"  if h[3] then\n"
	"    if to == NONE then to = {} end\n"
	"    wk = P .. 'w:' .. id\n"
	"    for _, w in ipairs(redis.call('SMEMBERS', wk)) do\n"
	"      local t, i = string.match(w, '^(.*)|([^|]*)$')\n"
	"      if t then to[#to + 1] = {t, i} end\n"
	"    end\n"
	"  end\n"
	"  for _, t in ipairs(to) do\n"
	"    if acc then\n"
	"      local f = acc.rep[t[1]]\n"
	"      if not f then\n"
	"        f = {}\n"
	"        acc.rep[t[1]] = f\n"
	"        acc.streams[#acc.streams + 1] = t[1]\n"
	"      end\n"
	"      local k = #f\n"
	"      f[k + 1], f[k + 2], f[k + 3], f[k + 4], f[k + 5] = 'i', t[2],"
	" 's', st, 'c'\n"
	"      f[k + 6], f[k + 7], f[k + 8], f[k + 9], f[k + 10] = code, 'v',"
	" val, 'm', msg\n"
	"    else\n"
	"      redis.call('XADD', t[1], '*', 'i', t[2], 's', st, 'c', code,"
	" 'v', val, 'm', msg)\n"
	"      redis.call('PEXPIRE', t[1], 86400000)\n"
	"    end\n"
	"  end\n"
	"  local ttl = tonumber(h[2] or '0') or 0\n"
	"  if ttl > 0 then\n"
	"    local rk = P .. 'r:' .. id\n"
	"    redis.call('HSET', rk, 's', st, 'c', code, 'v', val, 'm', msg)\n"
	"    redis.call('PEXPIRE', rk, ttl)\n"
	"  end\n"
	"  if acc then\n"
	"    local d = acc.del\n"
	"    d[#d + 1] = jk\n"
	"    if wk then d[#d + 1] = wk end\n"
	"    acc.gone[id] = true\n"
	"  else\n"
	"    redis.call('DEL', jk, wk or jk)\n"
	"  end\n"
	"  return true\n"
	"end\n"
	/* Into the dead-letter stream, with the reason; id may be nil (a
	 * malformed entry), fields are what the entry carried. */
	"local function dead(id, reason, code, msg, fields)\n"
	"  local f = {'XADD', P .. 'dead', 'MAXLEN', '~', DEADMAX, '*',"
	" 'reason', reason, 'code', code, 'msg', msg}\n"
	"  if id then\n"
	"    local h = redis.call('HMGET', P .. 'j:' .. id, 't', 'p', 'a')\n"
	"    for _, v in ipairs({'i', id, 't', h[1] or '', 'p', h[2] or '',"
	" 'a', h[3] or '0'}) do f[#f + 1] = v end\n"
	"  end\n"
	"  if fields then for _, v in ipairs(fields) do f[#f + 1] = v end end\n"
	"  redis.call(unpack(f))\n"
	"  if id and redis.call('EXISTS', P .. 'j:' .. id) == 1 then\n"
	"    resolve(id, 'd', code, '', reason .. ': ' .. msg)\n"
	"  end\n"
	"end\n"
	"local function ack(sk, eid)\n"
	"  redis.call('XACK', sk, G, eid)\n"
	"  redis.call('XDEL', sk, eid)\n"
	"end\n"
	"local function jid(fields)\n"
	"  if type(fields) ~= 'table' then return nil end\n"
	"  for i = 1, #fields - 1, 2 do\n"
	"    if fields[i] == 'j' then return fields[i + 1] end\n"
	"  end\n"
	"  return nil\n"
	"end\n"
	/* A delivered entry: its job to run, or nil when it was settled
	 * here (malformed, crashing, expired, too large, cancelled). One
	 * HMGET tells all, and a first delivery writes nothing: a live job
	 * always has t, a cancelled one's tombstone only cx. reclaimed:
	 * taken from a worker that went quiet (not a first delivery, so its
	 * deadline was checked then); if it ran alone there (so), that
	 * counts a crash against it (k). */
	"local function load(s, eid, id, fields, reclaimed)\n"
	"  local sk, jk = SK[s], P .. 'j:' .. (id or '')\n"
	"  local h = {}\n"
	"  if id then\n"
	"    h = redis.call('HMGET', jk, 't', 'p', 'a', 'dl', 'so', 'k', 'cx',"
	" 'rt', 'ttl')\n"
	"  end\n"
	"  if not h[1] and not h[7] then\n"
	"    ack(sk, eid)\n"
	"    dead(nil, 'malformed', '0', 'entry ' .. eid .. ' of ' .. sk ..\n"
	"         ' names no job', fields)\n"
	"    return nil\n"
	"  end\n"
	/* Cancelled: cx 2, settled by CANCEL, only its entry was left;
	 * cx 1, asked while a worker held it: not run again. */
	"  if h[7] then\n"
	"    ack(sk, eid)\n"
	"    if h[7] == '2' then redis.call('DEL', jk)\n"
	"    else resolve(id, 'c', '0', '', 'cancelled') end\n"
	"    return nil\n"
	"  end\n"
	"  local k = tonumber(h[6]) or 0\n"
	"  if h[5] then\n"
	"    redis.call('HDEL', jk, 'so')\n"
	"    if reclaimed then\n"
	"      k = k + 1\n"
	"      redis.call('HSET', jk, 'k', k)\n"
	"    end\n"
	"  end\n"
	"  if k >= MAXDELIV then\n"
	"    ack(sk, eid)\n"
	"    dead(id, 'crashed', '130', 'its worker died ' .. k ..\n"
	"         ' times while it ran alone')\n"
	"    return nil\n"
	"  end\n"
	"  local dl = tonumber(h[4]) or 0\n"
	"  if not reclaimed and dl > 0 and now_once() > dl then\n"
	"    ack(sk, eid)\n"
	"    resolve(id, 'x', '0', '', 'deadline passed')\n"
	"    return nil\n"
	"  end\n"
	"  if string.len(h[2]) > MAXPAY then\n"
	"    ack(sk, eid)\n"
	"    dead(id, 'too_large', '90', 'payload of ' .. string.len(h[2]) ..\n"
	"         ' bytes')\n"
	"    return nil\n"
	"  end\n"
	"  return {s, eid, id, h[1], h[2], h[3], h[8] or '', h[9] or '0'}\n"
	"end\n";

/*
 * SUBMIT: a batch of jobs with the same options. ARGV[7..17] = stream,
 * max attempts, back-off base, factor, cap, relative deadline, delay,
 * run-at, reply stream, ttl, idempotency key; then (id, type, payload)
 * per job. One reply per job, in order: 0 queued; {1, id} a duplicate
 * of a job still running (we wait on it too, and mark it w); {2, id, s,
 * c, v, m} a duplicate of one that finished, with its outcome. A job's
 * hash holds t, p, pr, a, t0 and e (its entry, when queued), and of the
 * other fields only those away from their defaults. Its first write is
 * its first job's, so a Redis out of memory refuses the whole batch.
 */
static const char submit_body[] =
	"local pr, key, rt = ARGV[7], ARGV[17], ARGV[15]\n"
	"local ttl = tonumber(ARGV[16])\n"
	"local now = now_ms()\n"
	"local due, delay, at = now, tonumber(ARGV[13]), tonumber(ARGV[14])\n"
	"if delay > 0 then due = now + delay end\n"
	"if at > due then due = at end\n"
	"local dlr = tonumber(ARGV[12])\n"
	"local dl = 0\n"
	"if dlr > 0 then dl = due + dlr end\n"
	"local sk, out = P .. 's' .. pr, {}\n"
	"local opt = {'pr', pr, 'a', 1, 't0', now}\n"
	"local function put(f, v, default)\n"
	"  if v ~= default then opt[#opt + 1], opt[#opt + 2] = f, v end\n"
	"end\n"
	"put('ma', ARGV[8], '1') put('bb', ARGV[9], '0')"
	" put('bf', ARGV[10], '1')\n"
	"put('bm', ARGV[11], '0') put('dlr', dlr, 0) put('dl', dl, 0)\n"
	"put('rt', rt, '') put('ttl', ttl, 0)\n"
	/* The idempotency key: the id of the job it names, or nil after
	 * claiming it for id. */
	"local function known(id)\n"
	"  if key == '' then return nil end\n"
	"  local kk = P .. 'k:' .. key\n"
	"  local ex = redis.call('GET', kk)\n"
	"  if not ex then redis.call('SET', kk, id, 'PX', ttl) end\n"
	"  return ex\n"
	"end\n"
	"for i = 18, #ARGV - 2, 3 do\n"
	"  local id = ARGV[i]\n"
	"  local ex = known(id)\n"
	"  if ex then\n"
	"    local r = redis.call('HMGET', P .. 'r:' .. ex, 's', 'c', 'v', 'm')\n"
	"    if r[1] then\n"
	"      out[#out + 1] = {2, ex, r[1], r[2], r[3], r[4]}\n"
	"    else\n"
	"      if rt ~= '' then\n"
	"        redis.call('SADD', P .. 'w:' .. ex, rt .. '|' .. id)\n"
	"        if redis.call('EXISTS', P .. 'j:' .. ex) == 1 then\n"
	"          redis.call('HSET', P .. 'j:' .. ex, 'w', 1)\n"
	"        end\n"
	"      end\n"
	"      out[#out + 1] = {1, ex}\n"
	"    end\n"
	"  else\n"
	"    local jk = P .. 'j:' .. id\n"
	"    if due > now then\n"
	"      redis.call('HSET', jk, 't', ARGV[i + 1], 'p', ARGV[i + 2],"
	" unpack(opt))\n"
	"      redis.call('ZADD', P .. 'd', due, id)\n"
	"    else\n"
	"      local e = redis.call('XADD', sk, '*', 'j', id)\n"
	"      redis.call('HSET', jk, 't', ARGV[i + 1], 'p', ARGV[i + 2], 'e',"
	" e, unpack(opt))\n"
	"    end\n"
	"    out[#out + 1] = 0\n"
	"  end\n"
	"end\n"
	"return out\n";

/* FETCH: ARGV[7] = most entries; the streams in priority order. Entries
 * are read and loaded in one step, so an entry delivered (pending in the
 * group) is one a worker holds. */
static const char fetch_body[] =
	"local left, out = tonumber(ARGV[7]), {}\n"
	"for s = 0, 2 do\n"
	"  if left <= 0 then break end\n"
	"  local r = redis.call('XREADGROUP', 'GROUP', G, C, 'COUNT', left,"
	" 'STREAMS', SK[s], '>')\n"
	"  if r then\n"
	"    for _, e in ipairs(r[1][2]) do\n"
	"      left = left - 1\n"
	"      local j = load(s, e[1], jid(e[2]), e[2])\n"
	"      if j then out[#out + 1] = j end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return out\n";

/*
 * RECLAIM: ARGV[7] = visibility (ms idle), ARGV[8] = most entries,
 * ARGV[9] = 1 when the worker holds nothing. A job idle past the
 * visibility timeout lost its worker (a crash or a stall) and is a
 * suspect: it runs again only alone, on a worker that holds nothing and
 * takes nothing else until it is done (it is marked so, and returned
 * with a 9th element, 1), so that a crash then is its own. A worker that
 * holds jobs takes what is not run (malformed, cancelled) and counts the
 * suspects it left. Returns {suspects left, jobs}.
 */
static const char reclaim_body[] =
	"local left, empty = tonumber(ARGV[8]), ARGV[9] == '1'\n"
	"local out, waiting = {}, 0\n"
	"for s = 0, 2 do\n"
	"  local sk = P .. 's' .. s\n"
	"  local idle = redis.call('XPENDING', sk, G, 'IDLE', ARGV[7], '-',"
	" '+', 100)\n"
	"  for _, pe in ipairs(idle) do\n"
	"    local eid = pe[1]\n"
	"    local e = redis.call('XRANGE', sk, eid, eid)[1]\n"
	"    local fields = e and e[2]\n"
	"    local id = jid(fields)\n"
	"    local runs = false\n"
	"    if id then\n"
	"      local h = redis.call('HMGET', P .. 'j:' .. id, 'pr', 'cx')\n"
	"      runs = h[1] and not h[2]\n"
	"    end\n"
	"    if runs and not (empty and #out == 0) then\n"
	"      waiting = waiting + 1\n"
	"    elseif left > 0 and #redis.call('XCLAIM', sk, G, C, ARGV[7], eid,"
	" 'JUSTID') == 1 then\n"
	"      left = left - 1\n"
	"      local j = load(s, eid, id, fields, true)\n"
	"      if j then\n"
	"        redis.call('HSET', P .. 'j:' .. id, 'so', 1)\n"
	"        j[9] = 1\n"
	"        out[1] = j\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return {waiting, out}\n";

/* HEARTBEAT: ARGV[7..] = (stream, entry id, job id) triples: each entry
 * still ours has its idle time reset (1, or 2 when its job was asked to
 * cancel), each lost to a reclaim is reported (0). */
static const char heartbeat_body[] =
	"local out = {}\n"
	"for i = 7, #ARGV - 2, 3 do\n"
	"  local sk, eid = P .. 's' .. ARGV[i], ARGV[i + 1]\n"
	"  local pe = redis.call('XPENDING', sk, G, eid, eid, 1)\n"
	"  if #pe == 1 and pe[1][2] == C then\n"
	"    redis.call('XCLAIM', sk, G, C, 0, eid, 'JUSTID')\n"
	"    out[#out + 1] = 1 + redis.call('HEXISTS', P .. 'j:' ..\n"
	"                                   ARGV[i + 2], 'cx')\n"
	"  else\n"
	"    out[#out + 1] = 0\n"
	"  end\n"
	"end\n"
	"return out\n";

/*
 * FINISH: a batch of outcomes, ARGV[7..] = 10 per outcome: stream, entry
 * id, job id, outcome (s succeeded, f failed, d dead letter, h hand back),
 * code, value, message, reason, and the job's reply stream and ttl as
 * the fetch returned them. One reply per outcome, in order: -1
 * fenced (the entry is no longer ours, or the job is gone), 0 done, 1 to
 * be retried, 2 handed back, 3 dead-lettered. Each outcome is judged as
 * if it were alone; the lease check is one XPENDING per stream over the
 * batch's range, and the acknowledgements, the replies (one entry per
 * reply stream) and the deletes are gathered and sent at the end. A
 * success reads nothing of its job when no job of the batch has waiters
 * (one EXISTS over their sets): an entry still pending on us names a job
 * that lives, and its reply stream and ttl never change. Acknowledged
 * entries are trimmed from the stream up to the oldest one
 * still pending or undelivered, instead of deleted one by one.
 */
static const char finish_body[] =
	"local acc = {rep = {}, streams = {}, del = {}, gone = {}}\n"
	"local acks, mine, more = {[0] = {}, {}, {}}, {[0] = {}, {}, {}}, {}\n"
	"local seen, out = {[0] = {}, {}, {}}, {}\n"
	"local function sid(e)\n"
	"  local ms, sq = string.match(e, '^(%d+)-(%d+)$')\n"
	"  return tonumber(ms), tonumber(sq)\n"
	"end\n"
	/* Which of the batch's entries are still pending on us. A reply cut
	 * at its count leaves the rest to one XPENDING each. Each id is
	 * parsed once; lo and hi keep it parsed (ms, seq) beside the text. */
	"local lo, hi = {}, {}\n"
	"for i = 7, #ARGV - 9, 10 do\n"
	"  local s, e = tonumber(ARGV[i]), ARGV[i + 1]\n"
	"  local ms, sq = sid(e)\n"
	"  local l, h = lo[s], hi[s]\n"
	"  if not l or ms < l[1] or (ms == l[1] and sq < l[2]) then\n"
	"    lo[s] = {ms, sq, e}\n"
	"  end\n"
	"  if not h or ms > h[1] or (ms == h[1] and sq > h[2]) then\n"
	"    hi[s] = {ms, sq, e}\n"
	"  end\n"
	"end\n"
	"for s = 0, 2 do\n"
	"  if lo[s] then\n"
	"    local r = redis.call('XPENDING', SK[s], G, lo[s][3], hi[s][3],"
	" 10000, C)\n"
	"    for _, p in ipairs(r) do mine[s][p[1]] = true end\n"
	"    more[s] = #r >= 10000\n"
	"  end\n"
	"end\n"
	"local function ours(s, sk, eid)\n"
	"  if mine[s][eid] then return true end\n"
	"  if not more[s] then return false end\n"
	"  local pe = redis.call('XPENDING', sk, G, eid, eid, 1)\n"
	"  return #pe == 1 and pe[1][2] == C\n"
	"end\n"
	"local wks = {}\n"
	"for i = 7, #ARGV - 9, 10 do\n"
	"  if ARGV[i + 3] == 's' then\n"
	"    wks[#wks + 1] = P .. 'w:' .. ARGV[i + 2]\n"
	"  end\n"
	"end\n"
	"local waited = #wks > 0 and redis.call('EXISTS', unpack(wks)) > 0\n"
	"local function finish(s, eid, id, o, code, val, msg, reason, rt, ttl)\n"
	"  local sk = SK[s]\n"
	/* The same entry twice (taken back by our own reclaim): once. */
	"  if seen[s][eid] or not ours(s, sk, eid) then return -1 end\n"
	"  seen[s][eid] = true\n"
	"  local ak = acks[s]\n"
	"  ak[#ak + 1] = eid\n"
	"  if acc.gone[id] then return -1 end\n"
	"  if o == 's' then\n"
	"    local known = not waited and {rt, ttl, nil, true} or nil\n"
	"    return resolve(id, 's', '0', val, '', acc, known) and 0 or -1\n"
	"  end\n"
	"  local jk = P .. 'j:' .. id\n"
	"  if redis.call('EXISTS', jk) == 0 then return -1 end\n"
	/* Asked to cancel while it ran (cx): not retried, and resolved
	 * cancelled instead of handed back. */
	"  local cx = redis.call('HEXISTS', jk, 'cx') == 1\n"
	"  if o == 'h' then\n"
	"    if cx then\n"
	"      return resolve(id, 'c', '0', '', 'cancelled', acc) and 0 or -1\n"
	"    end\n"
	"    redis.call('HSET', jk, 'e', redis.call('XADD', sk, '*', 'j', id))\n"
	"    return 2\n"
	"  end\n"
	"  if o == 'd' then dead(id, reason, code, msg) return 3 end\n"
	"  local h = redis.call('HMGET', jk, 'a', 'ma', 'bb', 'bf', 'bm', 'dlr')\n"
	"  local a, ma = tonumber(h[1]), tonumber(h[2]) or 1\n"
	"  if a < ma and not cx then\n"
	"    local f = tonumber(h[4]) or 1\n"
	"    if f <= 0 then f = 1 end\n"
	"    local d = math.floor((tonumber(h[3]) or 0) * f ^ (a - 1))\n"
	"    local cap = tonumber(h[5]) or 0\n"
	"    if cap > 0 and d > cap then d = cap end\n"
	"    local now = now_once()\n"
	"    local dl, dlr = 0, tonumber(h[6]) or 0\n"
	"    if dlr > 0 then dl = now + d + dlr end\n"
	"    redis.call('HSET', jk, 'a', a + 1, 'fa', now, 'due', now + d,"
	" 'dl', dl)\n"
	"    redis.call('ZADD', P .. 'd', now + d, id)\n"
	"    return 1\n"
	"  end\n"
	"  if ma > 1 and not cx then\n"
	"    dead(id, 'failed', code, 'failed ' .. a .. ' times, last: ' .. msg)\n"
	"    return 3\n"
	"  end\n"
	"  resolve(id, 'f', code, val, msg, acc)\n"
	"  return 0\n"
	"end\n"
	"for i = 7, #ARGV - 9, 10 do\n"
	"  out[#out + 1] = finish(tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2],"
	" ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7],"
	" ARGV[i + 8], ARGV[i + 9])\n"
	"end\n"
	/* Keep from the oldest entry pending on anyone, or, with none, from
	 * the first not yet delivered. */
	"for s = 0, 2 do\n"
	"  if #acks[s] > 0 then\n"
	"    local sk = P .. 's' .. s\n"
	"    redis.call('XACK', sk, G, unpack(acks[s]))\n"
	"    local pe, keep = redis.call('XPENDING', sk, G), nil\n"
	"    if pe[1] > 0 then\n"
	"      keep = pe[2]\n"
	"    else\n"
	"      for _, g in ipairs(redis.call('XINFO', 'GROUPS', sk)) do\n"
	"        for k = 1, #g - 1, 2 do\n"
	"          if g[k] == 'name' and g[k + 1] ~= G then break end\n"
	"          if g[k] == 'last-delivered-id' then\n"
	"            local ms, sq = sid(g[k + 1])\n"
	"            keep = ms .. '-' .. (sq + 1)\n"
	"          end\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"    if keep then redis.call('XTRIM', sk, 'MINID', keep) end\n"
	"  end\n"
	"end\n"
	"for _, t in ipairs(acc.streams) do\n"
	"  redis.call('XADD', t, '*', unpack(acc.rep[t]))\n"
	"  redis.call('PEXPIRE', t, 86400000)\n"
	"end\n"
	"if #acc.del > 0 then redis.call('DEL', unpack(acc.del)) end\n"
	"return out\n";

/* PROMOTE: ARGV[7] = most jobs. Due jobs of the delayed set go to their
 * stream; returns {moved, ms until the next is due or -1}. */
static const char promote_body[] =
	"local now = now_ms()\n"
	"local ids = redis.call('ZRANGEBYSCORE', P .. 'd', '-inf', now,"
	" 'LIMIT', 0, tonumber(ARGV[7]))\n"
	"for _, id in ipairs(ids) do\n"
	"  redis.call('ZREM', P .. 'd', id)\n"
	"  local pr = redis.call('HGET', P .. 'j:' .. id, 'pr')\n"
	"  if pr then\n"
	"    local e = redis.call('XADD', P .. 's' .. pr, '*', 'j', id)\n"
	"    redis.call('HSET', P .. 'j:' .. id, 'ra', now, 'e', e)\n"
	"  end\n"
	"end\n"
	"local nx = redis.call('ZRANGE', P .. 'd', 0, 0, 'WITHSCORES')\n"
	"local wait = -1\n"
	"if #nx == 2 then\n"
	"  wait = tonumber(nx[2]) - now\n"
	"  if wait < 0 then wait = 0 end\n"
	"end\n"
	"return {#ids, wait}\n";

/*
 * CANCEL: ARGV[7] = job id. 1: cancelled before any worker started it (it
 * waited in the delayed set, or in its stream: its entry is left as a
 * tombstone, cx 2, that the next fetch acknowledges); 2: a worker holds
 * it, marked cx 1 (not retried nor run again; the worker is told at its
 * next heartbeat); 0: no such job (settled, or not a job's own id).
 */
static const char cancel_body[] =
	"local id = ARGV[7]\n"
	"local jk = P .. 'j:' .. id\n"
	"local h = redis.call('HMGET', jk, 'e', 'cx', 'pr')\n"
	"if not h[3] then return 0 end\n"
	"if h[2] then return 2 end\n"
	"if redis.call('ZREM', P .. 'd', id) == 1 then\n"
	"  resolve(id, 'c', '0', '', 'cancelled')\n"
	"  return 1\n"
	"end\n"
	/* A worker holds it while its entry e is pending in the group (a
	 * fetch loads what it reads at once); else the entry is queued.
	 * No group yet (no worker ever came): nothing is pending. */
	"local pe = {}\n"
	"if h[1] then\n"
	"  pe = redis.pcall('XPENDING', P .. 's' .. h[3], G, h[1], h[1], 1)\n"
	"end\n"
	"if pe.err or #pe == 0 then\n"
	"  resolve(id, 'c', '0', '', 'cancelled')\n"
	"  redis.call('HSET', jk, 'cx', '2')\n"
	"  return 1\n"
	"end\n"
	"redis.call('HSET', jk, 'cx', '1')\n"
	"return 2\n";

static const char *const bodies[AQR_SCRIPTS] = {
	[AQR_SUBMIT] = submit_body,   [AQR_FETCH] = fetch_body,
	[AQR_RECLAIM] = reclaim_body, [AQR_HEARTBEAT] = heartbeat_body,
	[AQR_FINISH] = finish_body,   [AQR_PROMOTE] = promote_body,
	[AQR_CANCEL] = cancel_body,
};

size_t aqr_script_text(enum aqr_script which, char *buf, size_t size)
{
	size_t a = sizeof(prelude) - 1, b = strlen(bodies[which]);

	if (buf && size >= a + b + 1) {
		memcpy(buf, prelude, a);
		memcpy(buf + a, bodies[which], b + 1);
	}
	return a + b + 1;
}
