-- Budget-aware downgrade: keep each request under a per-key cost ceiling.
--
-- The worst-case cost of the request on an endpoint is estimated from its
-- prices: estimated prompt tokens x prompt price + max_tokens (or 1024 when
-- absent) x completion price + the per-request price. Endpoints over the
-- key's ceiling are dropped; the rest are tried cheapest first, so a request
-- for an expensive model is "downgraded" to a cheaper endpoint, or to a
-- cheaper model of the `models` fallback list. If nothing fits, the client
-- gets a 402 that says so. When the plan had to downgrade, max_tokens is
-- capped so the chosen endpoint stays within budget.
--
-- routing_script = "examples/routing/budget-aware-downgrade.lua"

local CEILING_USD = { ["team-interns"] = 0.002 }
local DEFAULT_CEILING_USD = 0.05
local DEFAULT_MAX_TOKENS = 1024

local function cost(request, c)
  local p = c.pricing
  local out = request.max_tokens > 0 and request.max_tokens or DEFAULT_MAX_TOKENS
  return request.estimated_prompt_tokens * p.prompt + out * p.completion + p.request
end

function route(request, candidates)
  local ceiling = CEILING_USD[request.key_label or ""] or DEFAULT_CEILING_USD
  local fits, costs = {}, {}
  for _, c in ipairs(candidates) do
    local x = cost(request, c)
    costs[c] = x
    if x <= ceiling and c.stats.circuit ~= "open" then fits[#fits + 1] = c end
  end
  if #fits == 0 then
    return nil, string.format("no endpoint of %s can serve this request within the budget of $%.4f",
      request.model, ceiling), 402
  end
  local downgraded = #fits < #candidates
  table.sort(fits, function(a, b)
    if costs[a] ~= costs[b] then return costs[a] < costs[b] end
    return a.index < b.index
  end)
  local plan = {}
  for i, c in ipairs(fits) do plan[i] = c.index end
  if downgraded then
    local c = fits[1]
    local room = ceiling - request.estimated_prompt_tokens * c.pricing.prompt - c.pricing.request
    if c.pricing.completion > 0 then
      local cap = math.floor(room / c.pricing.completion)
      if cap >= 1 and (request.max_tokens == 0 or cap < request.max_tokens) then
        plan.params = { max_tokens = cap }
      end
    end
  end
  return plan
end
