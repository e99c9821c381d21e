-- Cheapest endpoint whose time to first token meets a latency SLO.
--
-- The SLO is 2000 ms, or the request's `X-Latency-SLO-Ms` header. Endpoints
-- known to be slower (EWMA ttft above the SLO) go after the ones that meet
-- it; endpoints with no data yet count as meeting it (so they get measured).
-- Down endpoints (open circuit, parked by Retry-After) go last. Each attempt
-- gets a first-byte timeout of twice the SLO, so a stalled upstream is
-- abandoned quickly in favour of the next one.
--
-- routing_script = "examples/routing/cheapest-within-latency-SLO.lua"

local DEFAULT_SLO_MS = 2000

local function price(c)
  return c.pricing.prompt + c.pricing.completion
end

function route(request, candidates)
  local slo = tonumber(request.headers["x-latency-slo-ms"]) or DEFAULT_SLO_MS
  local within, slow, down = {}, {}, {}
  for _, c in ipairs(candidates) do
    local s = c.stats
    if s.circuit == "open" or s.parked_for_s > 0 then
      down[#down + 1] = c
    elseif s.ttft_ms > 0 and s.ttft_ms > slo then
      slow[#slow + 1] = c
    else
      within[#within + 1] = c
    end
  end
  local by_price = function(a, b)
    if price(a) ~= price(b) then return price(a) < price(b) end
    return a.index < b.index
  end
  table.sort(within, by_price)
  table.sort(slow, function(a, b) return a.stats.ttft_ms < b.stats.ttft_ms end)
  local plan = {}
  for _, list in ipairs({ within, slow, down }) do
    for _, c in ipairs(list) do
      plan[#plan + 1] = { candidate = c.index, timeout_ms = 2 * slo }
    end
  end
  return plan
end
