-- wrk script: attestations at rising levels, one key per wrk thread (run wrk with as many
-- threads as connections, so each connection is one baker asking in order; a key holds few
-- marks, so connections do not share a key on different chains).
--
--   wrk -t C -c C -d 8s -s attest.lua http://HOST:PORT -- START_LEVEL PKH1 [PKH2 ...]
--
-- Thread i signs for PKH(i) (wrapping around the list) on one chain.
--
-- Pacing (optional): with PAWL_WRK_PACE_US=P in the environment each connection waits about P
-- microseconds between an answer and its next request (wrk waits whole milliseconds: 1 ms on a
-- P/1000 share of the requests), so C connections offer a chosen rate instead of as many
-- requests as the machine can answer.
--
-- Body: the JSON string of an Octez attestation (magic 0x13, tag 21), docs/protocol.md §3.3.
-- Prints one line `RESULT requests=… non2xx=… sigps=… p50_us=… p90_us=… p99_us=… max_us=…`.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
  table.insert(threads, thread)
end

local level, path, chain_hex, branch_hex, hash_hex

function init(args)
  level = tonumber(args[1] or "1000")
  local keys = #args - 1
  path = "/keys/" .. args[2 + (index - 1) % keys]
  chain_hex = "7a06a770"
  branch_hex = string.rep("ab", 32)
  hash_hex = string.rep("cd", 32)
end

local pace = tonumber(os.getenv("PAWL_WRK_PACE_US") or "0")
if pace > 0 then
  local owed = 0
  function delay()
    owed = owed + pace
    if owed >= 1000 then
      owed = owed - 1000
      return 1
    end
    return 0
  end
end

function request()
  level = level + 1
  local op = "13" .. chain_hex .. branch_hex .. "15" .. "0000"
    .. string.format("%08x", level) .. "00000000" .. hash_hex
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, '"' .. op .. '"')
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT requests=%d non2xx=%d sigps=%.0f p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, bad, (summary.requests - bad) / secs, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
end
