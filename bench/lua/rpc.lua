-- wrk script for lmrpc: POSTs JSON-RPC bodies built from a template, counts errors, and
-- prints one JSON line of totals that bench/wrk.py reads.
--
-- Environment:
--   LMRPC_TOKEN     bearer token
--   LMRPC_TEMPLATE  the request body; in it {feature} becomes the next id of LMRPC_FEATURES,
--                   {job} the next of LMRPC_JOBS, {unique} a value unique in the run
--   LMRPC_FEATURES, LMRPC_JOBS  comma-separated ids
--   LMRPC_METHOD    GET for a plain GET of the URL's path (no body), default POST

local function ids(name)
  local list = {}
  for id in string.gmatch(os.getenv(name) or "", "[^,]+") do
    list[#list + 1] = id
  end
  return list
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("thread_id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  token = os.getenv("LMRPC_TOKEN")
  template = os.getenv("LMRPC_TEMPLATE") or ""
  features = ids("LMRPC_FEATURES")
  jobs = ids("LMRPC_JOBS")
  get = os.getenv("LMRPC_METHOD") == "GET"
  sent = 0
  errors = 0
  http_errors = 0
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end

local function pick(list, n)
  if #list == 0 then return "0" end
  return list[(n % #list) + 1]
end

function request()
  sent = sent + 1
  if get then
    return wrk.format("GET", nil, nil, nil)
  end
  local n = sent * 7 + thread_id
  local body = template:gsub("{(%w+)}", function(name)
    if name == "feature" then
      n = n + 1
      return pick(features, n)
    elseif name == "job" then
      return pick(jobs, thread_id)
    elseif name == "unique" then
      n = n + 1
      return thread_id .. "-" .. sent .. "-" .. n
    end
  end)
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    http_errors = http_errors + 1
  elseif string.find(body, '"error"', 1, true) then
    local _, count = string.gsub(body, '"error"', "")
    errors = errors + count
  end
end

function done(summary, latency, requests)
  local errs, http = 0, 0
  for _, thread in ipairs(threads) do
    errs = errs + thread:get("errors")
    http = http + thread:get("http_errors")
  end
  io.write(string.format(
    'LMRPC {"requests": %d, "seconds": %.3f, "errors": %d, "http_errors": %d, ' ..
    '"socket_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, errs, http,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
