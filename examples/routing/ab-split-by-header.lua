-- A/B split by header: arm "b" of an experiment routes to the cheapest
-- endpoint first, arm "a" (the control) keeps the configured order.
--
-- The arm comes from the `X-Experiment` header ("a" or "b"); without it, the
-- API key's label picks a stable arm (so one caller always sees one arm),
-- and anonymous requests go to "a". Arm "b" also lowers the temperature, to
-- show a parameter override (`params` is applied to the upstream request).
--
-- routing_script = "examples/routing/ab-split-by-header.lua"

local function arm_of(request)
  local h = request.headers["x-experiment"]
  if h == "a" or h == "b" then return h end
  local label = request.key_label
  if not label then return "a" end
  local sum = 0
  for i = 1, #label do sum = (sum * 31 + label:byte(i)) % 1000003 end
  return sum % 2 == 0 and "a" or "b"
end

local function up(c)
  return c.stats.circuit ~= "open" and c.stats.parked_for_s <= 0
end

function route(request, candidates)
  local list = {}
  for _, c in ipairs(candidates) do list[#list + 1] = c end
  local arm = arm_of(request)
  if arm == "b" then
    table.sort(list, function(x, y)
      local px = x.pricing.prompt + x.pricing.completion
      local py = y.pricing.prompt + y.pricing.completion
      if px ~= py then return px < py end
      return x.index < y.index
    end)
  end
  local plan, down = {}, {}
  for _, c in ipairs(list) do
    if up(c) then plan[#plan + 1] = c.index else down[#down + 1] = c.index end
  end
  for _, i in ipairs(down) do plan[#plan + 1] = i end
  if arm == "b" and not request.parameters.temperature then
    plan.params = { temperature = 0.3 }
  end
  return plan
end
