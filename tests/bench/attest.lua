-- wrk script for tests/bench/boards.sh: each connection is one baker signing attestations at
-- rising levels for one key on one chain. Run wrk with as many threads as connections (-t N
-- -c N): a wrk thread has one Lua state, so one connection per thread gives each connection
-- its own key and its own level counter, and the levels of a key arrive in order.
--
--   wrk -t N -c N -d 10s -s attest.lua http://HOST:PORT -- START_LEVEL PKH1 [PKH2 ...]
--
-- Connection i signs for PKH(i) (wrapping around the list), on mainnet (chain 7a06a770, the
-- chain `pawl keys generate` allows by default). Body: the JSON string of a tz1 attestation
-- (magic 0x13, tag 21; docs/protocol.md §3.3). Prints one line
-- `RESULT requests=… failed=… sigps=… p50_us=… p99_us=… max_us=…`.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
end

local level, path, prefix, suffix

function init(args)
  level = tonumber(args[1] or "1000")
  local keys = #args - 1
  path = "/keys/" .. args[2 + (index - 1) % keys]
  -- magic, chain, branch, tag 21, slot 0; then level, round 0, block payload hash.
  prefix = "13" .. "7a06a770" .. string.rep("ab", 32) .. "15" .. "0000"
  suffix = "00000000" .. string.rep("cd", 32)
end

function request()
  level = level + 1
  local body = '"' .. prefix .. string.format("%08x", level) .. suffix .. '"'
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT requests=%d failed=%d sigps=%.0f p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, failed, (summary.requests - failed) / secs,
    latency:percentile(50), latency:percentile(99), latency.max))
end
